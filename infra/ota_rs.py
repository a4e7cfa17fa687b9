"""Reads an OpenTravel answer (bare or in a SOAP 1.1 envelope) from stdin with Python's
own XML parser, sharing no code with the ingress that wrote it.

  python3 infra/ota_rs.py            # what the pipeline tests check, as JSON
  python3 infra/ota_rs.py --summary  # one line for the demo; exits 1 unless Success

The JSON holds the message's root, attributes, success, warnings, errors and reservation
ids (loadtest/tests/ota.rs)."""

import json
import sys
import xml.etree.ElementTree as ET

OTA = "{http://www.opentravel.org/OTA/2003/05}"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"


def read(body):
    root = ET.fromstring(body)
    soap = root.tag == SOAP + "Envelope"
    if soap:
        (message,) = list(root.find(SOAP + "Body"))
    else:
        message = root
    if not message.tag.startswith(OTA):
        sys.exit(f"not an OpenTravel message: {message.tag}")

    def problems(name):
        return [dict(e.attrib, text=e.text or "") for e in message.iter(OTA + name)]

    return {
        "soap": soap,
        "root": message.tag[len(OTA):],
        "attributes": message.attrib,
        "success": message.find(OTA + "Success") is not None,
        "warnings": problems("Warning"),
        "errors": problems("Error"),
        "unique_ids": [u.attrib.get("ID") for u in message.iter(OTA + "UniqueID")],
        "hotel_reservation_ids": [
            h.attrib.get("ResID_Value") for h in message.iter(OTA + "HotelReservationID")
        ],
    }


def summary(rs):
    status = rs["attributes"].get("ResResponseType") or rs["attributes"].get("Status")
    line = rs["root"] + ": " + ("Success" if rs["success"] else "Errors")
    if status:
        line += f" ({status})"
    if rs["unique_ids"]:
        line += f", channel reservation {rs['unique_ids'][0]}"
    if rs["hotel_reservation_ids"]:
        line += f", hotel confirmation {rs['hotel_reservation_ids'][0]}"
    for problem in rs["warnings"] + rs["errors"]:
        line += f"; {problem.get('Type')}/{problem.get('Code')} {problem['text']}"
    return line


if __name__ == "__main__":
    answer = read(sys.stdin.buffer.read())
    if "--summary" in sys.argv[1:]:
        print(summary(answer))
        sys.exit(0 if answer["success"] else 1)
    print(json.dumps(answer))
