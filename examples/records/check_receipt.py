"""Check a fairalloc receipt against a published tree head, with the standard library alone.

Usage: python check_receipt.py receipt.json head.json

This is the recipe of docs/privacy.md: a resident (or anyone they show it to) runs it without
installing anything. It prints what was checked and exits 0 when every check holds, 1 if not.
"""

import hashlib
import json
import sys


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(index, size, leaf, path):
    """RFC 9162 section 2.1.3.2: the root an inclusion proof leads to."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def check(receipt, head):
    ok = True
    # 1. The decision record is in the published log.
    record = receipt["decision"].encode("utf-8")
    record_leaf = hashlib.sha256(b"\x00" + record).digest()
    path = [bytes.fromhex(h) for h in receipt["log_path"]]
    root = root_from_path(receipt["log_index"], head["size"], record_leaf, path)
    fine = root is not None and root.hex() == head["root"]
    print("decision record in the published log:", "yes" if fine else "NO")
    ok &= fine
    decision = json.loads(record)["body"]
    # 2. My outcome and my row are the ones committed in that decision.
    for part, key in (("outcome", "outcome_root"), ("row", "list_root")):
        p = receipt[part]
        leaf = hashlib.sha256(
            b"\x00" + bytes.fromhex(p["nonce"]) + p["message"].encode("utf-8")
        ).digest()
        path = [bytes.fromhex(h) for h in p["path"]]
        root = root_from_path(p["index"], p["size"], leaf, path)
        fine = root is not None and root.hex() == decision[key] and p["size"] == decision["count"]
        print(f"my {part} committed in the decision:", "yes" if fine else "NO")
        ok &= fine
    outcome = json.loads(receipt["outcome"]["message"])
    fine = outcome["id"] == receipt["resident"]
    print("the receipt is mine:", "yes" if fine else "NO")
    ok &= fine
    print("outcome:", "served" if outcome["served"] else "not served")
    print("position in the allocation order:", outcome["position"])
    return ok


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as fh:
        receipt = json.load(fh)
    with open(sys.argv[2], encoding="utf-8") as fh:
        head = json.load(fh)
    sys.exit(0 if check(receipt, head) else 1)
