#!/usr/bin/env python3
"""Parse Prometheus text exposition (stdin) with prometheus_client's own parser; print JSON
{family: {"type": ..., "samples": [[name, labels, value], ...]}}. Exits 1 on a parse error."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {
        "type": fam.type,
        "samples": [[s.name, s.labels, s.value] for s in fam.samples],
    }
print(json.dumps(out))
