"""Regenerate tests/config/broken/ from the site template (run from the repo root).

Each case changes one thing and marks the line where the error must be reported with
``# <-- ERROR``; the first line of each file states the expected key path and message.
"""
from pathlib import Path
from gridctl.config.template import site_template
base = site_template(2).replace("# yaml-language-server: $schema=https://gridctl.example/schema/site.json\n", "")
out = Path("tests/config/broken")
M = "  # <-- ERROR"
echonet_base = site_template(2, "echonet").replace("# yaml-language-server: $schema=https://gridctl.example/schema/site.json\n", "")
def case(name, expect, old, new, occurrence=1, mark=None, base=base):
    text = base
    idx = -1
    for _ in range(occurrence):
        idx = text.index(old, idx + 1)
    text = text[:idx] + new + text[idx + len(old):]
    lines = text.split("\n")
    if mark is None:
        end = idx + len(new.rstrip("\n"))
        line_no = text[:end].count("\n")
    else:
        line_no = next(i for i, l in enumerate(lines) if mark in l)
    lines[line_no] += M
    (out / f"{name}.yaml").write_text(f"# expect: {expect}\n" + "\n".join(lines))
P1 = "port: 502, unit_id: 1}}   # CHANGE"
case("01-negative-capacity", "nodes[0].devices[1].rating.capacity_kwh: must be > 0", "rating: {capacity_kwh: 9.8,", "rating: {capacity_kwh: -9.8,")
case("02-unknown-key-site", "site.latitude: unknown key", "  latitude_deg: 35.88", "  latitude: 35.88")
case("03-string-for-number", "nodes[0].load.annual_kwh: Input should be a valid number", "annual_kwh: 4800,", "annual_kwh: lots,")
case("04-missing-version", "tariffs[0].version: required key missing", '    version: "2025-04"\n', "", mark="  - id: tepco-juryo-b")
case("05-bad-timezone", "site.timezone: unknown time zone", "  timezone: Asia/Tokyo", "  timezone: Mars/Olympus")
case("06-latitude-range", "site.latitude_deg: must be <= 90", "  latitude_deg: 35.88", "  latitude_deg: 135.88")
case("07-step-not-divide", "control.plan_step_min: plan_step_min (7) must divide the 30-minute period", "  plan_step_min: 15", "  plan_step_min: 7")
case("08-soc-order", "nodes[0].devices[1].rating: soc_min_pct (95.0) must be below soc_max_pct (10.0)", "soc_min_pct: 10, soc_max_pct: 95}", "soc_min_pct: 95, soc_max_pct: 10}", mark="rating: {capacity_kwh: 9.8")
case("09-bad-kind", "nodes[0].devices[0]: Input tag 'solar' found using 'kind' does not match", "        kind: pv_inverter", "        kind: solar", mark="      - id: home-1-pv")
case("10-bad-port", "nodes[0].devices[0].protocol.modbus.port: must be <= 65535", P1, "port: 70000, unit_id: 1}}")
case("11-unknown-tariff", "nodes[0].contract.tariff: unknown import tariff 'tepco-x'", "contract: {tariff: tepco-juryo-b,", "contract: {tariff: tepco-x,")
case("12-unknown-buyback", "nodes[1].contract.buyback_tariff: unknown export tariff 'fot'", "buyback_tariff: fit, contract_amperes_a: 50}", "buyback_tariff: fot, contract_amperes_a: 50}", occurrence=2)
case("13-unknown-profile", "nodes[0].devices[0].profile: unknown device profile 'acme-inverter'", "        profile: generic-sunspec-inverter", "        profile: acme-inverter")
case("14-profile-wrong-kind", "nodes[0].devices[1].profile: profile 'generic-sunspec-meter' is for a meter, not a battery", "        profile: generic-sunspec-battery", "        profile: generic-sunspec-meter")
case("15-duplicate-node", "nodes[1].id: duplicate node id 'home-1'", "  - id: home-2\n", "  - id: home-1\n")
case("16-duplicate-device", "nodes[0].devices[1].id: duplicate device id 'home-1-pv'", "      - id: home-1-battery\n", "      - id: home-1-pv\n")
case("17-link-unknown-router", "links[0].to_router: unknown router 'home-9-dgr'", "to_router: home-2-dgr,", "to_router: home-9-dgr,")
case("18-leg-unknown-device", "nodes[0].devices[3].legs[2].device: no device 'home-1-pvx' in node 'home-1'", "{id: pv, kind: pv, device: home-1-pv,", "{id: pv, kind: pv, device: home-1-pvx,")
case("19-leg-unknown-link", "nodes[0].devices[3].legs[4].link: unknown link 'link-1-3'", "link: link-1-2, capacity_kw: 10}", "link: link-1-3, capacity_kw: 10}")
case("20-device-without-leg", "nodes[0].devices[1].id: 'home-1-battery' needs a leg on router 'home-1-dgr'", "          - {id: battery, kind: battery, device: home-1-battery, capacity_kw: 4.0}\n", "", mark="      - id: home-1-battery")
case("21-token-in-file", "storage.influxdb.token: the token must not be in the file", "  # influxdb: {version: 2, url: \"http://127.0.0.1:8086\", org: my-org, bucket: gridctl}", "  influxdb: {version: 2, url: \"http://127.0.0.1:8086\", org: my-org, bucket: gridctl, token: abc}")
case("22-both-protocols", "nodes[0].devices[0].protocol: give exactly one of 'modbus', 'opcua' or 'echonet'", "protocol: {modbus: {host: 192.0.2.1, port: 502, unit_id: 1}}   # CHANGE", "protocol: {modbus: {host: 192.0.2.1}, opcua: {endpoint_url: 'opc.tcp://x:4840', security_policy: None, security_mode: None, identity: {kind: anonymous}}}")
case("23-opcua-insecure-mix", "nodes[0].devices[3].protocol.opcua: security_policy and security_mode must both be 'None' or neither", "            endpoint_url: opc.tcp://192.0.2.4:4840/gridctl/router  # CHANGE\n", "            endpoint_url: opc.tcp://192.0.2.4:4840/gridctl/router\n            security_policy: None\n", mark="          opcua:")
case("24-tariff-two-schemes", "tariffs[0]: give exactly one of 'energy_tiers' or 'time_of_use'", "    energy_tiers:                   # monthly kWh blocks\n", "    time_of_use: [{start: '00:00', end: '00:00', price_jpy_per_kwh: '30'}]\n    energy_tiers:\n", mark="  - id: tepco-juryo-b")
case("25-tier-order", "tariffs[0]: energy tier bounds must increase strictly", "{up_to_kwh: 300, price", "{up_to_kwh: 100, price", mark="  - id: tepco-juryo-b")
case("26-horizon-not-steps", "control: horizon_h must be a whole number of plan steps", "  horizon_h: 24", "  horizon_h: 24.1", mark="control:")
case("27-shed-tier-missing", "nodes[0].load.shed_tier: tier 7 is not in islanding.shed_order", "critical_share_pct: 15, shed_tier: 1}", "critical_share_pct: 15, shed_tier: 7}")
case("28-mechanism", "market.mechanism: Input should be 'sdr', 'mmr' or 'uniform_auction'", "  mechanism: sdr ", "  mechanism: pay_as_bid ")
case("29-contract-both", "nodes[0].contract: give exactly one of contract_amperes_a or contract_kw", "contract: {tariff: tepco-juryo-b, buyback_tariff: fit, contract_amperes_a: 50}", "contract: {tariff: tepco-juryo-b, buyback_tariff: fit, contract_amperes_a: 50, contract_kw: 5}")
case("30-valid-to-before-from", "tariffs[1]: valid_to must be after valid_from", "    valid_from: 2025-04-01\n    price_jpy_per_kwh", "    valid_from: 2025-04-01\n    valid_to: 2024-04-01\n    price_jpy_per_kwh", mark="  - id: fit")
case("31-yaml-syntax", "YAML syntax error", "  name: My neighbourhood block      # CHANGE\n", "  name: [unclosed\n  timezone: x\n", mark="  timezone: x")
case("32-duplicate-key", "YAML syntax error: found duplicate key", "  longitude_deg: 139.66", "  longitude_deg: 139.66\n  longitude_deg: 139.70")
case("33-leg-on-missing-grid", "nodes[0].devices[3].legs[0].kind: node 'home-1' has no grid connection", "    grid: {import_limit_kw: 5.0, export_limit_kw: 4.5}\n", "", mark="{id: grid, kind: grid")
case("34-setpoint-expiry", "control: setpoint_expiry_s must exceed poll_period_s", "  poll_period_s: 2", "  poll_period_s: 2\n  setpoint_expiry_s: 1", mark="control:")
case("35-unknown-top-level", "controls: unknown key", "control:\n", "controls:\n")
case("36-link-self", "links[0].to_router: a link joins two different routers", "to_router: home-2-dgr,", "to_router: home-1-dgr,")
case("37-pv-without-buyback", "nodes[1].contract.buyback_tariff: a node with PV and a grid connection needs a buyback_tariff", "contract: {tariff: tepco-juryo-b, buyback_tariff: fit, contract_amperes_a: 50}", "contract: {tariff: tepco-juryo-b, contract_amperes_a: 50}", occurrence=2)
case("38-inf-power", "nodes[0].devices[1].rating.max_charge_kw: must be a finite number", "max_charge_kw: 4.0,", "max_charge_kw: .inf,")
case("39-overflow-capacity", "nodes[0].devices[1].rating.capacity_kwh: must be a finite number", "rating: {capacity_kwh: 9.8,", "rating: {capacity_kwh: 1e999,")
case("40-nan-import-limit", "nodes[0].grid.import_limit_kw: must be a finite number", "grid: {import_limit_kw: 5.0,", "grid: {import_limit_kw: .nan,")
case("41-implausible-capacity", "nodes[0].devices[1].rating.capacity_kwh: must be <= 100000.0", "rating: {capacity_kwh: 9.8,", "rating: {capacity_kwh: 1000000,")
case("42-duplicate-modbus-endpoint", "nodes[0].devices[1].protocol.modbus: device 'home-1-battery' has the same endpoint (192.0.2.1:502 unit 1) as device 'home-1-pv' at nodes[0].devices[0].protocol.modbus", "protocol: {modbus: {host: 192.0.2.2, port: 502, unit_id: 1}}   # CHANGE", "protocol: {modbus: {host: 192.0.2.1, port: 502, unit_id: 1}}")
case("43-duplicate-opcua-endpoint", "nodes[1].devices[3].protocol.opcua: device 'home-2-dgr' has the same endpoint (opc.tcp://192.0.2.4/gridctl/router/) as device 'home-1-dgr' at nodes[0].devices[3].protocol.opcua", "          opcua:\n            endpoint_url: opc.tcp://192.0.2.8:4840/gridctl/router  # CHANGE\n", "          opcua:  # home-2 router\n            endpoint_url: opc.tcp://192.0.2.4/gridctl/router/\n", mark="opcua:  # home-2 router")
case("44-influx-url-credentials", "storage.influxdb.url: credentials must not be in the URL (user:password@)", "  # influxdb: {version: 2, url: \"http://127.0.0.1:8086\", org: my-org, bucket: gridctl}", "  influxdb: {version: 1, url: \"http://gridctl:s3cret@127.0.0.1:8086\", database: gridctl}")
case("45-impossible-date", "YAML value error: month must be in 1..12", "    valid_from: 2025-04-01\n    price_jpy_per_kwh", "    valid_from: 2025-13-01\n    price_jpy_per_kwh", mark="valid_from: 2025-13-01")
case("46-deep-nesting", "YAML nesting deeper than 64 levels", "  name: My neighbourhood block      # CHANGE\n", "  name: " + "[" * 500 + "]" * 500 + "\n", mark="  name: [[[")
case("47-request-timeout-past-watchdog", "nodes[0].devices[1].protocol.modbus.timeout_s: must be <= 3.0", "protocol: {modbus: {host: 192.0.2.2, port: 502, unit_id: 1}}   # CHANGE", "protocol: {modbus: {host: 192.0.2.2, port: 502, unit_id: 1, timeout_s: 60}}")
E1 = "protocol: {echonet: {host: 192.0.2.1, port: 3610, instance: 1}}   # CHANGE"
case("48-echonet-host-not-ip", "nodes[0].devices[0].protocol.echonet.host: host 'pv.home-1.lan' is not an IP address (ECHONET Lite nodes are addressed by IP)", E1, "protocol: {echonet: {host: pv.home-1.lan, port: 3610, instance: 1}}", base=echonet_base)
case("49-echonet-on-router", "nodes[0].devices[4].protocol.echonet: a router speaks OPC UA: an 'echonet' block cannot address it (give 'opcua')", "        protocol:\n          opcua:\n            endpoint_url: opc.tcp://192.0.2.5:4840/gridctl/router  # CHANGE\n            certificate_path: /etc/gridctl/pki/client-cert.der\n            private_key_path: /etc/gridctl/pki/client-key.pem\n            server_certificate_path: /etc/gridctl/pki/home-1-dgr.der\n", "        protocol:\n          echonet: {host: 192.0.2.5}\n", mark="echonet: {host: 192.0.2.5}", base=echonet_base)
case("50-echonet-class-not-kind", "device_profiles.generic-echonet-battery: class_code 0x0279 does not match kind 'battery' (expected 0x027D)", "protocol: echonet_lite, echonet: {class_code: 0x027D}}", "protocol: echonet_lite, echonet: {class_code: 0x0279}}", mark="  generic-echonet-battery:", base=echonet_base)
case("51-modbus-block-echonet-profile", "nodes[0].devices[0].protocol.modbus: profile 'generic-echonet-pv' speaks echonet_lite: give the 'echonet' protocol block, not 'modbus'", E1, "protocol: {modbus: {host: 192.0.2.1, port: 502, unit_id: 1}}", base=echonet_base)
case("52-duplicate-echonet-object", "nodes[1].devices[0].protocol.echonet: device 'home-2-pv' has the same endpoint (192.0.2.1:3610 object 0x0279 instance 1) as device 'home-1-pv' at nodes[0].devices[0].protocol.echonet", "protocol: {echonet: {host: 192.0.2.6, port: 3610, instance: 1}}   # CHANGE", "protocol: {echonet: {host: 192.0.2.1, port: 3610, instance: 1}}", base=echonet_base)
case("53-echonet-meter-not-grid", "nodes[0].devices[2].role: an ECHONET Lite meter is the node's B-route smart meter: role must be 'grid'", "        profile: generic-echonet-smart-meter\n", "        profile: generic-echonet-smart-meter\n        role: load\n", mark="        role: load", base=echonet_base)
case("54-signs-on-echonet-profile", "device_profiles.generic-echonet-battery: 'signs' does not apply to echonet_lite: the drivers apply the specification's signs; use echonet.quirks.invert_power_sign", "protocol: echonet_lite, echonet: {class_code: 0x027D}}", "protocol: echonet_lite, echonet: {class_code: 0x027D}, signs: {power: true}}", mark="  generic-echonet-battery:", base=echonet_base)
