"""Delivery backends: Alibaba Cloud SMS against a local stub of its HTTP API (signature checked as the service
checks it), the e-mail backend through Django's mail outbox, the file backend's JSON lines."""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail

from campaigns import delivery
from campaigns.delivery.aliyun_sms import AliyunSmsBackend, sign
from campaigns.delivery.email import EmailBackend
from campaigns.delivery.file import FileBackend

SECRET = "testsecret"


class StubSms(BaseHTTPRequestHandler):
    calls = []
    answer = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5"}

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        signature = params.pop("Signature")
        valid = signature == sign(params, SECRET)
        type(self).calls.append((params, valid))
        body = json.dumps(self.answer if valid else {"Code": "SignatureDoesNotMatch", "Message": "bad"}).encode()
        self.send_response(200 if valid else 400)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    StubSms.calls = []
    StubSms.answer = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5"}
    server = HTTPServer(("127.0.0.1", 0), StubSms)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def backend(endpoint, secret=SECRET):
    return AliyunSmsBackend(
        access_key_id="LTAItest",
        access_key_secret=secret,
        sign_name="会员俱乐部",
        template_code="SMS_1234",
        endpoint=endpoint,
    )


def outgoing(n):
    return [
        delivery.Outgoing(
            message_id=i,
            channel="sms",
            to=f"+86138001380{i:02d}",
            member_no=f"M{i}",
            subject="",
            body=f"您好 {i} 回TD退订",
        )
        for i in range(n)
    ]


def test_aliyun_sms_signs_and_batches_by_one_hundred(stub):
    results = backend(stub).send(outgoing(150))
    assert [valid for _params, valid in StubSms.calls] == [True, True]
    first, _valid = StubSms.calls[0]
    assert first["Action"] == "SendBatchSms" and first["Version"] == "2017-05-25"
    assert first["TemplateCode"] == "SMS_1234" and first["SignatureMethod"] == "HMAC-SHA1"
    assert json.loads(first["PhoneNumberJson"])[:2] == ["13800138000", "13800138001"]
    assert json.loads(first["TemplateParamJson"])[0] == {"content": "您好 0 回TD退订"}
    assert json.loads(first["SignNameJson"]) == ["会员俱乐部"] * 100
    assert len(json.loads(StubSms.calls[1][0]["PhoneNumberJson"])) == 50
    assert all(result.sent and result.reference == "900619746936498440^0" for result in results)


def test_aliyun_sms_a_refusal_fails_the_messages_and_a_wrong_secret_is_refused(stub):
    StubSms.answer = {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "invalid number"}
    refused = backend(stub).send(outgoing(2))
    assert [(r.sent, r.error) for r in refused] == [(False, "isv.MOBILE_NUMBER_ILLEGAL: invalid number")] * 2
    wrong = backend(stub, secret="other").send(outgoing(1))
    assert wrong[0].error.startswith("SignatureDoesNotMatch")


def test_aliyun_sms_throttling_or_no_answer_is_transient(stub):
    StubSms.answer = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "too fast"}
    with pytest.raises(delivery.TransientError):
        backend(stub).send(outgoing(1))
    with pytest.raises(delivery.TransientError):
        backend("http://127.0.0.1:9/").send(outgoing(1))


def test_the_signature_matches_alibaba_clouds_documented_example():
    # The worked example of Alibaba Cloud's RPC signature documentation (secret "testsecret").
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert sign(params, "testsecret", method="GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_email_backend_uses_djangos_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    message = delivery.Outgoing(
        message_id=1, channel="email", to="a@example.com", member_no="M1", subject="Hi", body="Body"
    )
    assert EmailBackend().send([message])[0].sent
    assert (mail.outbox[0].to, mail.outbox[0].subject, mail.outbox[0].body) == (["a@example.com"], "Hi", "Body")


def test_file_backend_writes_one_json_line_per_message(tmp_path):
    path = tmp_path / "out.jsonl"
    FileBackend(path=str(path)).send(outgoing(3))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["to"] for line in lines] == ["+8613800138000", "+8613800138001", "+8613800138002"]
