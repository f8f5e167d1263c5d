"""The public ends of message channels: the e-mail unsubscribe page and the SMS provider's reply push."""

import hmac
import json

from django.conf import settings
from django.http import HttpResponseForbidden, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import unsubscribe


@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token):
    """GET asks (mail scanners follow links; a GET changes nothing), POST withdraws the consent."""
    if request.method == "GET":
        return render(request, "campaigns/unsubscribe.html", {"token": token, "done": False})
    member = unsubscribe.unsubscribe_by_token(token=token)
    status = 200 if member else 400
    return render(
        request, "campaigns/unsubscribe.html", {"token": token, "done": True, "ok": bool(member)}, status=status
    )


@csrf_exempt
@require_POST
def sms_replies_view(request, token):
    """Alibaba Cloud SMS pushes replies (上行短信) as a JSON list of {phone_number, content, ...}."""
    if not settings.CAMPAIGN_REPLY_TOKEN or not hmac.compare_digest(token, settings.CAMPAIGN_REPLY_TOKEN):
        return HttpResponseForbidden()
    try:
        replies = json.loads(request.body or b"[]")
    except ValueError:
        return JsonResponse({"code": 1, "msg": "not JSON"}, status=400)
    if isinstance(replies, dict):
        replies = [replies]
    withdrawn = 0
    for reply in replies if isinstance(replies, list) else []:
        if isinstance(reply, dict):
            withdrawn += unsubscribe.sms_reply_record(
                phone=str(reply.get("phone_number", "")), text=str(reply.get("content", "")), provider="aliyun"
            )
    return JsonResponse({"code": 0, "msg": "成功", "withdrawn": withdrawn})
