"""A commented starting point for an installer: ``gridctl config init --nodes N [--protocol P]``.

``--protocol sunspec`` (the default) templates homes whose PV, battery and meter speak SunSpec
Modbus; ``--protocol echonet`` homes with ECHONET Lite PV, storage battery, B-route smart meter
and a load switch. Routers are OPC UA DGRs either way.

The text is built here rather than dumped from models so that every section carries the
comments an installer needs. The result always validates (a test loads it for several N).
"""

from __future__ import annotations

_HEADER = """\
# yaml-language-server: $schema=https://gridctl.example/schema/site.json
# gridctl site file: a template with {n} {protocol}home(s). Replace every value marked CHANGE.
# Units are in every key (_kw, _kwh, _jpy_per_kwh, _pct, _s). Sign convention: supply-positive
# (grid_kw > 0 imports, battery_kw > 0 discharges). Validate with: gridctl config validate FILE

site:
  id: my-block                      # CHANGE: lower-case id
  name: My neighbourhood block      # CHANGE
  timezone: Asia/Tokyo
  latitude_deg: 35.88               # CHANGE: used for the PV forecast
  longitude_deg: 139.66
  nominal_frequency_hz: 50          # 50 east of the Fuji river, 60 west
  nominal_voltage_v: 202

# Device profiles (vendor knowledge) may live in a folder next to this file:
#   device_profiles_dir: devices
# This template carries its profiles inline so that it validates on its own.
device_profiles:
{profiles}  gridctl-dgr: {{id: gridctl-dgr, vendor: gridctl, kind: router, protocol: opcua_router}}

tariffs:                            # dated and versioned; prices tax-inclusive [JPY/kWh]
  - id: tepco-juryo-b
    kind: import
    version: "2025-04"
    valid_from: 2025-04-01
    basic_charge_jpy_per_10a_month: "311.75"
    energy_tiers:                   # monthly kWh blocks
      - {{up_to_kwh: 120, price_jpy_per_kwh: "29.80"}}
      - {{up_to_kwh: 300, price_jpy_per_kwh: "36.40"}}
      - {{up_to_kwh: null, price_jpy_per_kwh: "40.49"}}
    renewable_surcharge_jpy_per_kwh: "3.98"
    fuel_cost_adjustment_jpy_per_kwh: "0"   # CHANGE monthly (fuel_cost_adjustment_by_month)
  - id: fit
    kind: export
    scheme: fit                     # fit | post_fit
    version: "FY2025H1"
    valid_from: 2025-04-01
    price_jpy_per_kwh: "15.00"

market:
  mechanism: sdr                    # sdr | mmr | uniform_auction
  platform_fee_jpy_per_kwh: "0"

islanding:
  reserve_hours_h: 12               # critical load hours kept stored while grid-connected
  reconnect_delay_s: 300

control:
  poll_period_s: 2
  plan_step_min: 15                 # must divide 30
  horizon_h: 24
  replan_period_s: 900

storage:
  ledger_path: /var/lib/gridctl/ledger.sqlite
  # influxdb: {{version: 2, url: "http://127.0.0.1:8086", org: my-org, bucket: gridctl}}
  #   the token is read from $GRIDCTL_INFLUXDB_TOKEN or the systemd credential influxdb-token

nodes:
"""

_SUNSPEC_PROFILES = """\
  generic-sunspec-inverter:
    {id: generic-sunspec-inverter, vendor: Generic SunSpec, kind: pv_inverter,
     protocol: modbus_sunspec, models_expected: [1, 101, 120, 123], control_models: [123]}
  generic-sunspec-battery:
    {id: generic-sunspec-battery, vendor: Generic SunSpec, kind: battery,
     protocol: modbus_sunspec, models_expected: [1, 124, 802], control_models: [124, 802]}
  generic-sunspec-meter:
    {id: generic-sunspec-meter, vendor: Generic SunSpec, kind: meter,
     protocol: modbus_sunspec, models_expected: [1, 203]}
"""

# ECHONET Lite class codes: 0x0279 household PV, 0x027D storage battery, 0x0288 low-voltage
# smart meter, 0x05FD switch (JEM-A/HA terminal). The drivers apply the specification's signs
# (battery 0xD3 charge-positive); a product that departs from it gets echonet.quirks.
_ECHONET_PROFILES = """\
  generic-echonet-pv:
    {id: generic-echonet-pv, vendor: Generic ECHONET Lite, kind: pv_inverter,
     protocol: echonet_lite, echonet: {class_code: 0x0279}}
  generic-echonet-battery:
    {id: generic-echonet-battery, vendor: Generic ECHONET Lite, kind: battery,
     protocol: echonet_lite, echonet: {class_code: 0x027D}}
  generic-echonet-smart-meter:
    {id: generic-echonet-smart-meter, vendor: Generic ECHONET Lite, kind: meter,
     protocol: echonet_lite, echonet: {class_code: 0x0288}}
  generic-echonet-switch:
    {id: generic-echonet-switch, vendor: Generic ECHONET Lite, kind: switch,
     protocol: echonet_lite, echonet: {class_code: 0x05FD}}
"""

_SUNSPEC_DEVICES = """\
      - id: home-{i}-pv
        kind: pv_inverter
        profile: generic-sunspec-inverter
        protocol: {{modbus: {{host: 192.0.2.{a}, port: 502, unit_id: 1}}}}   # CHANGE
        rating: {{ac_kw: 4.5, dc_kwp: 4.8, tilt_deg: 30, azimuth_deg: 180}}
      - id: home-{i}-battery
        kind: battery
        profile: generic-sunspec-battery
        protocol: {{modbus: {{host: 192.0.2.{b}, port: 502, unit_id: 1}}}}   # CHANGE
        rating: {{capacity_kwh: 9.8, max_charge_kw: 4.0, max_discharge_kw: 4.0,
                 soc_min_pct: 10, soc_max_pct: 95}}
      - id: home-{i}-meter
        kind: meter
        profile: generic-sunspec-meter
        protocol: {{modbus: {{host: 192.0.2.{c}, port: 502, unit_id: 1}}}}   # CHANGE
"""

# Each ECHONET Lite node answers on UDP 3610 of its own IP address; instance is the object's
# instance code on that node (1 unless the node hosts two objects of one class).
_ECHONET_DEVICES = """\
      - id: home-{i}-pv
        kind: pv_inverter
        profile: generic-echonet-pv
        protocol: {{echonet: {{host: 192.0.2.{a}, port: 3610, instance: 1}}}}   # CHANGE
        rating: {{ac_kw: 4.5, dc_kwp: 4.8, tilt_deg: 30, azimuth_deg: 180}}
      - id: home-{i}-battery
        kind: battery
        profile: generic-echonet-battery
        protocol: {{echonet: {{host: 192.0.2.{b}, port: 3610, instance: 1}}}}   # CHANGE
        rating: {{capacity_kwh: 9.8, max_charge_kw: 4.0, max_discharge_kw: 4.0,
                 soc_min_pct: 10, soc_max_pct: 95}}
      - id: home-{i}-meter                # the B-route smart meter (fixed 30-minute counters)
        kind: meter
        profile: generic-echonet-smart-meter
        protocol: {{echonet: {{host: 192.0.2.{c}, port: 3610, instance: 1}}}}   # CHANGE
      - id: home-{i}-switch               # load switch of the sheddable circuits (EPC 0x80)
        kind: switch
        profile: generic-echonet-switch
        protocol: {{echonet: {{host: 192.0.2.{e}, port: 3610, instance: 1}}}}   # CHANGE
"""

_NODE = """\
  - id: home-{i}
    name: Home {i}                  # CHANGE
    member_type: home
    contract: {{tariff: tepco-juryo-b, buyback_tariff: fit, contract_amperes_a: 50}}
    load: {{annual_kwh: 4800, profile: h25, critical_share_pct: 15, shed_tier: 1{switches}}}
    grid: {{import_limit_kw: 5.0, export_limit_kw: 4.5}}
    devices:
{devices}      - id: home-{i}-dgr
        kind: router
        profile: gridctl-dgr
        protocol:
          opcua:
            endpoint_url: opc.tcp://192.0.2.{d}:4840/gridctl/router  # CHANGE
            certificate_path: /etc/gridctl/pki/client-cert.der
            private_key_path: /etc/gridctl/pki/client-key.pem
            server_certificate_path: /etc/gridctl/pki/home-{i}-dgr.der
        rating: {{rated_kw: 10}}
        legs:
          - {{id: grid, kind: grid, capacity_kw: 10}}
          - {{id: load, kind: node, capacity_kw: 10}}
          - {{id: pv, kind: pv, device: home-{i}-pv, capacity_kw: 4.5}}
          - {{id: battery, kind: battery, device: home-{i}-battery, capacity_kw: 4.0}}
{links}"""


def _ring(n: int) -> list[tuple[int, int]]:
    if n < 2:
        return []
    if n == 2:
        return [(1, 2)]
    return [(i, i % n + 1) for i in range(1, n + 1)]


#: ``config init --protocol`` choices.
TEMPLATE_PROTOCOLS = ("sunspec", "echonet")


def site_template(n_nodes: int, protocol: str = "sunspec") -> str:
    """A commented site file with ``n_nodes`` homes linked in a ring (1 <= n <= 60) whose PV,
    battery and meter speak ``protocol`` (``sunspec`` or ``echonet``)."""
    if not 1 <= n_nodes <= 60:
        raise ValueError("--nodes must be between 1 and 60")
    if protocol not in TEMPLATE_PROTOCOLS:
        raise ValueError(f"--protocol must be one of {', '.join(TEMPLATE_PROTOCOLS)}, not '{protocol}'")
    echonet = protocol == "echonet"
    ring = _ring(n_nodes)
    parts = [_HEADER.format(n=n_nodes, protocol="ECHONET Lite " if echonet else "",
                            profiles=_ECHONET_PROFILES if echonet else _SUNSPEC_PROFILES)]
    for i in range(1, n_nodes + 1):
        legs = "".join(
            f"          - {{id: to-home-{b if a == i else a}, kind: link, "
            f"link: link-{a}-{b}, capacity_kw: 10}}\n"
            for a, b in ring if i in (a, b)
        )
        per = 5 if echonet else 4  # addresses per home: its devices and its router
        a = per * (i - 1) + 1
        devices = (_ECHONET_DEVICES if echonet else _SUNSPEC_DEVICES).format(i=i, a=a, b=a + 1, c=a + 2, e=a + 3)
        switches = f",\n           switches: [{{device: home-{i}-switch, channel: 0}}]" if echonet else ""
        parts.append(_NODE.format(i=i, d=a + per - 1, links=legs, devices=devices, switches=switches))
    if ring:
        parts.append("\nlinks:                              # flow_kw > 0 from from_router to to_router\n")
        parts.extend(
            f"  - {{id: link-{a}-{b}, from_router: home-{a}-dgr, to_router: home-{b}-dgr, "
            f"capacity_kw: 10, efficiency_pct: 97}}\n" for a, b in ring
        )
    return "".join(parts)
