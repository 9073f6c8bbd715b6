import json
from tests.conftest import http_response, send_bytes
from tests.test_workers import shared_collection, another_machine, uploaded


def test_probe(run_cli, raw_server, tmp_path, postgresql_url, s3):
    first, bucket = shared_collection(tmp_path / "machine-a", run_cli, s3, postgresql_url)
    second = another_machine(first, tmp_path / "machine-b")
    server = raw_server({"/a": send_bytes(http_response(b"<title>A</title>"))})
    seeds = tmp_path / "seeds"; seeds.mkdir()
    (seeds / "doc.md").write_text(f"# Claim\n\nTroops moved: {server.url('/a')}\n")
    c = run_cli("capture", "-C", first.root, seeds)
    print("CAPTURE", c.exit_code, c.output[-300:])
    v = run_cli("verify", "-C", second.root, "--json")
    print("VERIFY B", v.exit_code, json.dumps(json.loads(v.stdout)["failures"])[:1500], json.loads(v.stdout)["not_checked"])
    b = run_cli("bundle", "-C", second.root, "--all", "-o", tmp_path / "b.wacz")
    print("BUNDLE B", b.exit_code, b.output[-500:])
    cl = run_cli("claims", "-C", second.root, "--json")
    print("CLAIMS B", cl.exit_code, cl.output[:300])
    d = run_cli("doctor", "-C", second.root, "--json")
    print("DOCTOR B", d.exit_code, d.output[:1000])
    print("STORE", uploaded(s3, bucket))
    import os
    for root, dirs, files in os.walk(first.root):
        print("A:", root, files)
