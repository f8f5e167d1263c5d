"""Alibaba Cloud SMS (阿里云短信服务) through its published HTTP API: `SendBatchSms` (API version 2017-05-25),
signed with the RPC signature (HMAC-SHA1 of the canonical query, key = AccessKey secret + "&").

Chinese carriers only deliver marketing SMS through an approved template, so each message's text goes into the
template's parameter (`template_param`, default `content`) of a template such as "${content} 回TD退订". Options
(settings.CAMPAIGN_BACKENDS["sms"]["OPTIONS"]): access_key_id, access_key_secret, sign_name, template_code,
template_param, endpoint (default https://dysmsapi.aliyuncs.com/), timeout (seconds, default 5).
"""

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from . import Backend, Result, TransientError

BATCH = 100  # SendBatchSms takes at most 100 numbers a call
TRANSIENT_CODES = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "ServiceUnavailable"}


def percent_encode(text: str) -> str:
    return urllib.parse.quote(str(text), safe="-_.~")


def sign(params: dict, secret: str, method: str = "POST") -> str:
    """The RPC signature of Alibaba Cloud's APIs (SignatureVersion 1.0)."""
    canonical = "&".join(f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsBackend(Backend):
    def _call(self, params: dict) -> dict:
        options = self.options
        params = {
            "AccessKeyId": options["access_key_id"],
            "Format": "JSON",
            "RegionId": options.get("region", "cn-hangzhou"),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
            **params,
        }
        params["Signature"] = sign(params, options["access_key_secret"])
        request = urllib.request.Request(  # noqa: S310 - the endpoint is configured by the operator (https)
            options.get("endpoint", "https://dysmsapi.aliyuncs.com/"),
            data=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=options.get("timeout", 5)) as response:  # noqa: S310
                return json.loads(response.read().decode())
        except urllib.error.HTTPError as error:
            try:
                return json.loads(error.read().decode())
            except ValueError:
                raise TransientError(f"HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise TransientError(str(error)) from error

    def send(self, messages):
        results = []
        name = self.options.get("template_param", "content")
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            answer = self._call(
                {
                    "Action": "SendBatchSms",
                    "PhoneNumberJson": json.dumps([m.to.removeprefix("+86") for m in chunk]),
                    "SignNameJson": json.dumps([self.options["sign_name"]] * len(chunk), ensure_ascii=False),
                    "TemplateCode": self.options["template_code"],
                    "TemplateParamJson": json.dumps([{name: m.body} for m in chunk], ensure_ascii=False),
                }
            )
            code = answer.get("Code")
            if code in TRANSIENT_CODES:
                raise TransientError(f"{code}: {answer.get('Message', '')}")
            for m in chunk:
                if code == "OK":
                    results.append(Result(message_id=m.message_id, sent=True, reference=answer.get("BizId", "")))
                else:
                    error = f"{code}: {answer.get('Message', '')}"[:500]
                    results.append(Result(message_id=m.message_id, sent=False, error=error))
        return results
