"""The provisioning files parse and say what Grafana needs (no Grafana server runs here)."""

from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "provisioning"


def _load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text())


def test_datasource_is_influxql_with_secrets_from_the_environment():
    doc = _load(ROOT / "datasources" / "gridctl.yaml")
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["type"] == "influxdb" and ds["access"] == "proxy" and ds["isDefault"] is True
    assert ds["jsonData"]["version"] == "InfluxQL" and ds["jsonData"]["dbName"]
    assert "uid" not in ds  # dashboards find it through their DS_INFLUXDB variable
    assert ds["secureJsonData"] == {"password": "${GRIDCTL_INFLUX_PASSWORD}"}
    assert ds["url"].startswith("${") and "password" not in ds


def test_dashboard_provider_reads_files():
    doc = _load(ROOT / "dashboards" / "gridctl.yaml")
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert provider["folder"] == "gridctl"
