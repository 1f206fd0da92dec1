"""Third-party peer: canmatrix (Debian python3-canmatrix) decodes our frames
with our DBC, and encodes the expected signal values back into bytes.

Usage: dbc_peer_test.py FRAMES_TOOL DBC_FILE

FRAMES_TOOL prints frames from our C++ encoder with the values it was given
(testdata/dbc_peer_frames.cc). For each frame this checks, signal by signal,
that canmatrix's decoding equals what the encoder was given, that the DBC
describes exactly the signals we expect (none missing, none extra), and that
canmatrix's own encoding of the expected values gives our bytes. The DBC
describes the per-wallbox messages for address 1; a frame for address N is
looked up at its id with the address bits replaced by 1, as the DBC says.
Run with /usr/bin/python3 (Debian's packages).
"""
import decimal
import json
import subprocess
import sys

import can  # python3-can: the frames are handled as python-can Messages
import canmatrix
import canmatrix.formats


def dbc_id(frame_id):
    if frame_id >> 6 == 1:  # AvailableCurrent: address 0
        return frame_id
    return (frame_id & ~0x3F) | 1


def main():
    tool, dbc = sys.argv[1], sys.argv[2]
    frames = json.loads(subprocess.run([tool], check=True, capture_output=True).stdout)
    db = canmatrix.formats.loadp_flat(dbc)
    failures = []
    seen_types = set()
    for n, f in enumerate(frames):
        msg = can.Message(arbitration_id=f["id"], is_extended_id=False,
                          data=bytes.fromhex(f["data"]), dlc=f["dlc"])
        where = "frame %d (id 0x%03x data %s)" % (n, msg.arbitration_id, msg.data.hex())
        frame = db.frame_by_id(canmatrix.ArbitrationId(dbc_id(msg.arbitration_id)))
        if frame is None:
            failures.append("%s: no DBC message" % where)
            continue
        seen_types.add(frame.name)
        try:
            decoded = frame.decode(bytes(msg.data))
        except Exception as e:  # canmatrix raises on a DLC mismatch
            failures.append("%s: canmatrix cannot decode: %s" % (where, e))
            continue
        expected = f["signals"]
        got_names, want_names = set(decoded), set(expected)
        if got_names != want_names:
            failures.append("%s: DBC signals %s missing, %s unexpected" % (
                where, sorted(want_names - got_names), sorted(got_names - want_names)))
        for name in sorted(got_names & want_names):
            got = decoded[name].phys_value
            want = expected[name]
            if abs(float(got) - float(want)) > 1e-9:
                failures.append("%s: %s decoded %s, encoder was given %s" % (where, name, got, want))
        # The other direction: canmatrix encodes the expected values.
        raw = {}
        for sig in frame.signals:
            if sig.name in expected:
                raw[sig.name] = sig.phys2raw(decimal.Decimal(repr(expected[sig.name])))
        encoded = bytes(frame.encode(raw))
        if encoded != bytes(msg.data):
            failures.append("%s: canmatrix encodes the values as %s" % (where, encoded.hex()))
    all_types = {fr.name for fr in db.frames}
    if seen_types != all_types:
        failures.append("DBC messages never exercised: %s" % sorted(all_types - seen_types))
    for line in failures[:50]:
        print("FAIL:", line)
    print("%d frames, %d DBC messages, %d failures" % (len(frames), len(seen_types), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
