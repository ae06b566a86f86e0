#!/usr/bin/python3
"""A local Route 53 endpoint for agentd's tests and demo.

It speaks Route 53's REST-XML (API version 2013-04-01) like AWS: every
request's SigV4 signature is checked with botocore (service route53, region
us-east-1, as for the global endpoint), request bodies and query strings are
read against botocore's route53 model (an element or query parameter the
model does not have is refused) and validated with botocore's own validator,
and answers and errors are the XML Route 53 sends. It keeps the service's
rules: a change batch is atomic; CREATE of an existing set fails; DELETE must
match the current set exactly (TTL, values, routing); a CNAME cannot share its
name; names must lie inside the zone; batch limits (1000 records, UPSERT
counting twice, 32000 characters of values). A change is PENDING, then INSYNC
after --insync-delay seconds.

Operations: ChangeResourceRecordSets, GetChange, ListResourceRecordSets,
ListHostedZonesByName.

Admin endpoints (plain JSON, no signature):
  POST /admin/zones {"name", "id"?, "private"?}          -> {"id"}
  POST /admin/records {"zone_id", "action": "UPSERT"|"DELETE", "name", "type",
        "ttl", "values": [...], "set_identifier"?, "weight"?, "multivalue"?}
        change a record by hand (as someone else would), no rules but the zone's
  POST /admin/faults {"throttle": N, "error500": N, "prior_request": N,
        "actions": [op names], "insync_delay": s}   the next N matching calls fail
  GET  /admin/state   zones with their records, changes, and the request log
        (each {"time", "op", "method", "path", "params", "status", "error"})
"""
import datetime
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import emulib  # noqa: E402

NS = "https://route53.amazonaws.com/doc/2013-04-01/"
LOCK = threading.RLock()
ZONES = {}     # id -> {"id", "name", "private", "records": {(name, type, setid): rrset}}
CHANGES = {}   # id -> {"id", "submitted", "insync_at", "comment"}
FAULTS = {"throttle": 0, "error500": 0, "prior_request": 0, "actions": None}
SETTINGS = {"insync_delay": 1.0}
REQUESTS = []
MAX_RECORDS = 1000
MAX_CHARS = 32000


def now():
    return time.time()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class ApiError(Exception):
    def __init__(self, code, message, status=400, kind="Sender"):
        super().__init__(message)
        self.code, self.message, self.status, self.kind = code, message, status, kind


class BatchError(Exception):
    """Route 53's InvalidChangeBatch: a list of messages."""

    def __init__(self, messages):
        super().__init__("; ".join(messages))
        self.messages = messages


def norm_name(name):
    """Route 53's form: lower case, trailing dot, '*' as \\052 on output."""
    n = name.replace("\\052", "*").lower()
    return n if n.endswith(".") else n + "."


def out_name(name):
    return name.replace("*", "\\052")


def sort_key(rr):
    labels = rr["Name"].rstrip(".").split(".")
    return (list(reversed(labels)), rr["Type"], rr.get("SetIdentifier") or "")


# --- the model: XML in, parameters out --------------------------------------

def xml_to_shape(elem, shape, path):
    t = shape.type_name
    if t == "structure":
        out = {}
        by_name = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()
                   if m.serialization.get("location") is None}
        for child in elem:
            tag = child.tag.split("}", 1)[-1]
            if tag not in by_name:
                raise ApiError("InvalidInput", "Unexpected element %s/%s" % (path, tag))
            n, m = by_name[tag]
            out[n] = xml_to_shape(child, m, path + "/" + tag)
        return out
    if t == "list":
        item = shape.member.serialization.get("name", "member")
        items = []
        for child in elem:
            tag = child.tag.split("}", 1)[-1]
            if tag != item:
                raise ApiError("InvalidInput", "Unexpected element %s/%s (expected %s)" % (path, tag, item))
            items.append(xml_to_shape(child, shape.member, path + "/" + tag))
        return items
    if len(elem):
        raise ApiError("InvalidInput", "Element %s takes no children" % path)
    text = elem.text or ""
    if t in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise ApiError("InvalidInput", "%s: %r is not an integer" % (path, text))
    if t == "boolean":
        if text not in ("true", "false"):
            raise ApiError("InvalidInput", "%s: %r is not a boolean" % (path, text))
        return text == "true"
    return text


def params_from(op, uri, query, body):
    model = emulib.service_model("route53").operation_model(op)
    shape = model.input_shape
    params = {}
    by_q = {}
    for n, m in shape.members.items():
        loc = m.serialization.get("location")
        if loc == "uri" and m.serialization.get("name") in uri:
            params[n] = uri[m.serialization["name"]]
        elif loc == "querystring":
            by_q[m.serialization["name"]] = n
    for k, v in query.items():
        if k not in by_q:
            raise ApiError("InvalidInput", "Unknown query parameter %r" % k)
        params[by_q[k]] = v
    if body:
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            raise ApiError("MalformedInput", "Could not parse the request body: %s" % e)
        tag = root.tag
        want = "{%s}%s" % (NS, shape.serialization.get("name"))
        if tag != want:
            raise ApiError("InvalidInput", "Root element must be %s, not %s" % (want, tag))
        body_members = type("S", (), {})()
        body_members.type_name = "structure"
        body_members.members = {n: m for n, m in shape.members.items()
                                if m.serialization.get("location") is None}
        params.update(xml_to_shape(root, body_members, shape.serialization.get("name")))
    errors = emulib.validate("route53", op, params)
    if errors:
        raise ApiError("InvalidInput", "; ".join(errors))
    return params


# --- the service ------------------------------------------------------------

def zone_for(zid):
    z = ZONES.get(zid)
    if z is None:
        raise ApiError("NoSuchHostedZone", "No hosted zone found with ID: %s" % zid, 404)
    return z


def rr_from_params(rr):
    out = {"Name": norm_name(rr["Name"]), "Type": rr["Type"]}
    for k in ("SetIdentifier", "Weight", "MultiValueAnswer", "TTL", "Region", "Failover",
              "HealthCheckId", "AliasTarget", "GeoLocation"):
        if k in rr:
            out[k] = rr[k]
    out["Values"] = [r["Value"] for r in rr.get("ResourceRecords", [])]
    return out


def describe(rr):
    return "[name='%s', type='%s'%s]" % (out_name(rr["Name"]), rr["Type"],
                                        ", set-identifier='%s'" % rr["SetIdentifier"]
                                        if rr.get("SetIdentifier") else "")


def check_rrset(zone, rr, msgs):
    name = rr["Name"]
    if not (name == zone["name"] or name.endswith("." + zone["name"])):
        msgs.append("RRSet with DNS name %s is not permitted in zone %s" % (out_name(name), zone["name"]))
    routed = "Weight" in rr or "MultiValueAnswer" in rr or "Region" in rr or "Failover" in rr
    if routed and not rr.get("SetIdentifier"):
        msgs.append("Invalid request: Expected exactly one of [Weight, Region, Failover, GeoLocation, "
                    "MultiValueAnswer, ...] with SetIdentifier %s" % describe(rr))
    if rr.get("SetIdentifier") and not routed:
        msgs.append("Invalid request: Missing field 'Weight' (or another routing policy) in %s" % describe(rr))
    if "AliasTarget" not in rr:
        if "TTL" not in rr:
            msgs.append("Invalid request: Missing field 'TTL' in %s" % describe(rr))
        if not rr["Values"]:
            msgs.append("Invalid request: Missing field 'ResourceRecords' in %s" % describe(rr))
    if rr["Type"] == "CNAME" and len(rr["Values"]) > 1:
        msgs.append("Invalid Resource Record: FATAL problem: CNAME records may hold one value %s" % describe(rr))
    if rr["Type"] == "A":
        for v in rr["Values"]:
            if not re.fullmatch(r"(\d{1,3}\.){3}\d{1,3}", v) or any(int(x) > 255 for x in v.split(".")):
                msgs.append("Invalid Resource Record: FATAL problem: ARRDATAIllegalIPv4Address "
                            "(Value is not a valid IPv4 address) encountered with '%s'" % v)
    if rr["Type"] == "TXT":
        for v in rr["Values"]:
            if not (v.startswith('"') and v.endswith('"')):
                msgs.append("Invalid Resource Record: FATAL problem: InvalidCharacterString "
                            "(Value should be enclosed in quotation marks) encountered with '%s'" % v)


def same_record(a, b):
    keys = ("TTL", "Weight", "MultiValueAnswer", "SetIdentifier", "Region", "Failover",
            "HealthCheckId", "AliasTarget", "GeoLocation")
    return all(a.get(k) == b.get(k) for k in keys) and sorted(a["Values"]) == sorted(b["Values"])


def apply_batch(zone, changes):
    """All or nothing, like Route 53."""
    msgs = []
    n_records = sum(len(c["ResourceRecordSet"].get("ResourceRecords", [])) *
                    (2 if c["Action"] == "UPSERT" else 1) for c in changes)
    n_chars = sum(len(r["Value"]) * (2 if c["Action"] == "UPSERT" else 1)
                  for c in changes for r in c["ResourceRecordSet"].get("ResourceRecords", []))
    if len(changes) > MAX_RECORDS or n_records > MAX_RECORDS:
        raise BatchError(["Number of records limit of %d exceeded." % MAX_RECORDS])
    if n_chars > MAX_CHARS:
        raise BatchError(["Number of characters limit of %d exceeded." % MAX_CHARS])
    records = dict(zone["records"])
    for c in changes:
        rr = rr_from_params(c["ResourceRecordSet"])
        check_rrset(zone, rr, msgs)
        key = (rr["Name"], rr["Type"], rr.get("SetIdentifier"))
        cur = records.get(key)
        action = c["Action"]
        if action == "CREATE" and cur is not None:
            msgs.append("Tried to create resource record set %s but it already exists" % describe(rr))
            continue
        if action == "DELETE":
            if cur is None:
                msgs.append("Tried to delete resource record set %s but it was not found" % describe(rr))
            elif not same_record(cur, rr):
                msgs.append("Tried to delete resource record set %s but the values provided do not "
                            "match the current values" % describe(rr))
            else:
                del records[key]
            continue
        others = [k for k in records if k[0] == rr["Name"] and k[1] != rr["Type"]]
        if rr["Type"] == "CNAME" and others or (others and any(k[1] == "CNAME" for k in others)):
            msgs.append("RRSet of type %s with DNS name %s is not permitted because a conflicting RRSet "
                        "of type %s with the same DNS name already exists in zone %s" % (
                            rr["Type"], out_name(rr["Name"]), others[0][1], zone["name"]))
            continue
        mixed = [k for k in records if k[0] == rr["Name"] and k[1] == rr["Type"] and
                 bool(k[2]) != bool(rr.get("SetIdentifier"))]
        if mixed:
            msgs.append("RRSet %s conflicts with an existing set of the same name and type with a "
                        "different routing policy" % describe(rr))
            continue
        records[key] = rr
    if msgs:
        raise BatchError(msgs)
    zone["records"] = records


def new_change(comment=None):
    cid = "C" + uuid.uuid4().hex[:12].upper()
    CHANGES[cid] = {"id": cid, "submitted": now(), "insync_at": now() + SETTINGS["insync_delay"],
                    "comment": comment}
    return CHANGES[cid]


def change_xml(c):
    status = "INSYNC" if now() >= c["insync_at"] else "PENDING"
    xml = "<ChangeInfo><Id>/change/%s</Id><Status>%s</Status><SubmittedAt>%s</SubmittedAt>" % (
        c["id"], status, iso(c["submitted"]))
    if c.get("comment"):
        xml += "<Comment>%s</Comment>" % escape(c["comment"])
    return xml + "</ChangeInfo>"


def rr_xml(rr):
    xml = "<ResourceRecordSet><Name>%s</Name><Type>%s</Type>" % (escape(out_name(rr["Name"])), rr["Type"])
    if rr.get("SetIdentifier"):
        xml += "<SetIdentifier>%s</SetIdentifier>" % escape(rr["SetIdentifier"])
    if "Weight" in rr:
        xml += "<Weight>%d</Weight>" % rr["Weight"]
    if rr.get("MultiValueAnswer"):
        xml += "<MultiValueAnswer>true</MultiValueAnswer>"
    if "TTL" in rr:
        xml += "<TTL>%d</TTL>" % rr["TTL"]
    xml += "<ResourceRecords>%s</ResourceRecords>" % "".join(
        "<ResourceRecord><Value>%s</Value></ResourceRecord>" % escape(v) for v in rr["Values"])
    return xml + "</ResourceRecordSet>"


def op_change(p):
    zone = zone_for(p["HostedZoneId"])
    batch = p["ChangeBatch"]
    apply_batch(zone, batch["Changes"])
    c = new_change(batch.get("Comment"))
    return change_xml(c)


def op_get_change(p):
    cid = p["Id"].split("/")[-1]
    c = CHANGES.get(cid)
    if c is None:
        raise ApiError("NoSuchChange", "Could not find resource with ID: %s" % cid, 404)
    return change_xml(c)


def op_list(p):
    zone = zone_for(p["HostedZoneId"])
    if "StartRecordType" in p and "StartRecordName" not in p:
        raise ApiError("InvalidInput", "The input is not valid: type given without name")
    if "StartRecordIdentifier" in p and "StartRecordType" not in p:
        raise ApiError("InvalidInput", "The input is not valid: identifier given without type")
    try:
        maxitems = int(p.get("MaxItems", "300"))
    except ValueError:
        raise ApiError("InvalidInput", "maxitems must be a number")
    maxitems = max(1, min(maxitems, 300))
    rrs = sorted(zone["records"].values(), key=sort_key)
    if "StartRecordName" in p:
        start = {"Name": norm_name(p["StartRecordName"]), "Type": p.get("StartRecordType", ""),
                 "SetIdentifier": p.get("StartRecordIdentifier", "")}
        sk = sort_key(start)
        rrs = [r for r in rrs if sort_key(r) >= sk]
    page, rest = rrs[:maxitems], rrs[maxitems:]
    xml = "<ResourceRecordSets>%s</ResourceRecordSets><IsTruncated>%s</IsTruncated>" % (
        "".join(rr_xml(r) for r in page), "true" if rest else "false")
    if rest:
        xml += "<NextRecordName>%s</NextRecordName><NextRecordType>%s</NextRecordType>" % (
            escape(out_name(rest[0]["Name"])), rest[0]["Type"])
        if rest[0].get("SetIdentifier"):
            xml += "<NextRecordIdentifier>%s</NextRecordIdentifier>" % escape(rest[0]["SetIdentifier"])
    return xml + "<MaxItems>%d</MaxItems>" % maxitems


def op_zones_by_name(p):
    try:
        maxitems = max(1, min(int(p.get("MaxItems", "100")), 100))
    except ValueError:
        raise ApiError("InvalidInput", "maxitems must be a number")
    zones = sorted(ZONES.values(), key=lambda z: (list(reversed(z["name"].rstrip(".").split("."))), z["id"]))
    if "DNSName" in p:
        start = list(reversed(norm_name(p["DNSName"]).rstrip(".").split(".")))
        zones = [z for z in zones if list(reversed(z["name"].rstrip(".").split("."))) >= start]
    page = zones[:maxitems]
    xml = "<HostedZones>"
    for z in page:
        xml += ("<HostedZone><Id>/hostedzone/%s</Id><Name>%s</Name><CallerReference>%s</CallerReference>"
                "<Config><PrivateZone>%s</PrivateZone></Config><ResourceRecordSetCount>%d"
                "</ResourceRecordSetCount></HostedZone>") % (
            z["id"], escape(z["name"]), z["id"].lower(), "true" if z["private"] else "false",
            len(z["records"]))
    xml += "</HostedZones>"
    if "DNSName" in p:
        xml += "<DNSName>%s</DNSName>" % escape(p["DNSName"])
    xml += "<IsTruncated>%s</IsTruncated><MaxItems>%d</MaxItems>" % (
        "true" if len(zones) > maxitems else "false", maxitems)
    return xml


ROUTES = [
    ("POST", re.compile(r"^/2013-04-01/hostedzone/(?P<Id>[^/]+)/rrset/?$"), "ChangeResourceRecordSets", op_change),
    ("GET", re.compile(r"^/2013-04-01/change/(?P<Id>[^/]+)$"), "GetChange", op_get_change),
    ("GET", re.compile(r"^/2013-04-01/hostedzone/(?P<Id>[^/]+)/rrset/?$"), "ListResourceRecordSets", op_list),
    ("GET", re.compile(r"^/2013-04-01/hostedzonesbyname$"), "ListHostedZonesByName", op_zones_by_name),
]


def admin_zone(data):
    zid = data.get("id") or "Z" + uuid.uuid4().hex[:20].upper()
    ZONES[zid] = {"id": zid, "name": norm_name(data["name"]), "private": bool(data.get("private")),
                  "records": {}}
    return {"id": zid}


def admin_record(data):
    zone = zone_for(data["zone_id"])
    rr = {"Name": norm_name(data["name"]), "Type": data["type"], "Values": list(data.get("values", []))}
    if "ttl" in data:
        rr["TTL"] = int(data["ttl"])
    if data.get("set_identifier"):
        rr["SetIdentifier"] = data["set_identifier"]
    if "weight" in data:
        rr["Weight"] = int(data["weight"])
    if data.get("multivalue"):
        rr["MultiValueAnswer"] = True
    key = (rr["Name"], rr["Type"], rr.get("SetIdentifier"))
    if data.get("action", "UPSERT") == "DELETE":
        zone["records"].pop(key, None)
    else:
        zone["records"][key] = rr
    return {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, ctype="text/xml"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def admin(self, method, body):
        data = json.loads(body or b"{}")
        with LOCK:
            if method == "GET" and self.path == "/admin/state":
                state = {"zones": [{"id": z["id"], "name": z["name"], "private": z["private"],
                                    "records": sorted(z["records"].values(), key=sort_key)}
                                   for z in ZONES.values()],
                         "changes": list(CHANGES.values()), "requests": list(REQUESTS)}
                return self.send(200, json.dumps(state, default=str), "application/json")
            try:
                if method == "POST" and self.path == "/admin/zones":
                    return self.send(200, json.dumps(admin_zone(data)), "application/json")
                if method == "POST" and self.path == "/admin/records":
                    return self.send(200, json.dumps(admin_record(data)), "application/json")
            except ApiError as e:
                return self.send(e.status, json.dumps({"error": e.message}), "application/json")
            if method == "POST" and self.path == "/admin/faults":
                FAULTS.update({"throttle": 0, "error500": 0, "prior_request": 0, "actions": None})
                if "insync_delay" in data:
                    SETTINGS["insync_delay"] = float(data.pop("insync_delay"))
                FAULTS.update(data)
                return self.send(200, "{}", "application/json")
        self.send(404, "not found", "text/plain")

    def handle_api(self, method):
        body = self.body()
        if self.path.startswith("/admin/"):
            return self.admin(method, body)
        url = urllib.parse.urlsplit(self.path)
        entry = {"time": now(), "op": None, "method": method, "path": url.path, "params": None,
                 "status": 200, "error": None}
        try:
            try:
                emulib.verify_sigv4(method, self.path, self.headers.items(), body, "route53",
                                    region="us-east-1")
            except emulib.SigError as e:
                raise ApiError(e.code, str(e), 403)
            for m, rx, op, fn in ROUTES:
                match = rx.match(url.path)
                if m == method and match:
                    break
            else:
                raise ApiError("UnknownOperationException", "No operation for %s %s" % (method, url.path), 404)
            entry["op"] = op
            query = {}
            for k, v in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                if k in query:
                    raise ApiError("InvalidInput", "Query parameter %r given twice" % k)
                query[k] = v
            if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                raise ApiError("InvalidInput", "Route 53 takes XML, not a form")
            if method == "GET" and body:
                raise ApiError("InvalidInput", "A GET takes no body")
            uri = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            params = params_from(op, uri, query, body)
            entry["params"] = params
            with LOCK:
                applies = not FAULTS["actions"] or op in FAULTS["actions"]
                if applies and FAULTS["throttle"] > 0:
                    FAULTS["throttle"] -= 1
                    raise ApiError("Throttling", "Rate exceeded")
                if applies and FAULTS["prior_request"] > 0 and op == "ChangeResourceRecordSets":
                    FAULTS["prior_request"] -= 1
                    raise ApiError("PriorRequestNotComplete",
                                   "The request was rejected because Route 53 was still processing a "
                                   "prior request.")
                if applies and FAULTS["error500"] > 0:
                    FAULTS["error500"] -= 1
                    raise ApiError("InternalFailure", "An internal error occurred.", 500, "Receiver")
                result = fn(params)
            xml = '<?xml version="1.0" encoding="UTF-8"?>\n<%sResponse xmlns="%s">%s</%sResponse>' % (
                op, NS, result, op)
            self.send(200, xml)
        except BatchError as e:
            # Route 53 used to answer <InvalidChangeBatch><Messages>...; since
            # 2024 it is a standard error whose message lists them in [].
            entry["status"], entry["error"] = 400, "InvalidChangeBatch"
            entry["messages"] = e.messages
            self.send(400, '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="%s"><Error>'
                      "<Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>[%s]</Message></Error>"
                      "<RequestId>%s</RequestId></ErrorResponse>" % (
                          NS, escape(", ".join(e.messages)), uuid.uuid4()))
        except ApiError as e:
            entry["status"], entry["error"] = e.status, e.code
            entry["message"] = e.message
            self.send(e.status, '<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="%s"><Error>'
                      "<Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId>"
                      "</ErrorResponse>" % (NS, e.kind, e.code, escape(e.message), uuid.uuid4()))
        finally:
            if entry["op"] is not None or entry["error"] is not None:
                with LOCK:
                    REQUESTS.append(entry)

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")


def setup(ap):
    ap.add_argument("--insync-delay", type=float, default=1.0,
                    help="seconds a change stays PENDING")
    ap.add_argument("--zone", action="append", default=[],
                    help="NAME or NAME=ID: a hosted zone to create at start")


if __name__ == "__main__":
    for i, a in enumerate(sys.argv):
        if a == "--insync-delay":
            SETTINGS["insync_delay"] = float(sys.argv[i + 1])
        if a == "--zone":
            name, _, zid = sys.argv[i + 1].partition("=")
            admin_zone({"name": name, "id": zid or None})
    random.seed()
    emulib.serve(Handler, setup=setup)
