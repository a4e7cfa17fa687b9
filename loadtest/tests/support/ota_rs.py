"""Reads an OpenTravel answer (bare or in a SOAP 1.1 envelope) from stdin with Python's
own XML parser and prints, as JSON, what the pipeline tests check: a reading of the
ingress's answer that shares no code with the ingress."""

import json
import sys
import xml.etree.ElementTree as ET

OTA = "{http://www.opentravel.org/OTA/2003/05}"
SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"

root = ET.fromstring(sys.stdin.buffer.read())
soap = root.tag == SOAP + "Envelope"
if soap:
    (message,) = list(root.find(SOAP + "Body"))
else:
    message = root
if not message.tag.startswith(OTA):
    sys.exit(f"not an OpenTravel message: {message.tag}")


def problems(name):
    return [dict(e.attrib, text=e.text or "") for e in message.iter(OTA + name)]


print(
    json.dumps(
        {
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
    )
)
