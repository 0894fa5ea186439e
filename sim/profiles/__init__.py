"""Simulation profiles: synthetic (pvlib + seeded clouds, BDEW/commercial loads) or measured CSV."""

from sim.profiles.measured import CSV_FORMAT, read_measured_csv
from sim.profiles.profileset import ProfileError, ProfileSet, time_grid
from sim.profiles.synthetic import synthetic_profiles, to_step

__all__ = ["CSV_FORMAT", "ProfileError", "ProfileSet", "read_measured_csv", "synthetic_profiles",
           "time_grid", "to_step"]
