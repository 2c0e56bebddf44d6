"""Local fakes of the providers, following their documented request and webhook formats.

They validate what Wayline sends (unknown fields are rejected, as a strict reading of the docs
demands) and answer as the providers do. Tests script special answers by pushing
``(status, json)`` pairs onto ``script``. Nothing here contacts a real provider.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wayline.channels import sms, whatsapp


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- WhatsApp Cloud API ----------------------------------------------------------------------


class _Param(_Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=1024)


class _Component(_Strict):
    type: Literal["header", "body", "button"]
    parameters: list[_Param]
    sub_type: str | None = None
    index: str | None = None


class _Language(_Strict):
    code: str = Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$")


class _Template(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    language: _Language
    components: list[_Component] = Field(default_factory=list)


class _Text(_Strict):
    body: str = Field(min_length=1, max_length=4096)
    preview_url: bool = False


class _GraphMessage(_Strict):
    messaging_product: Literal["whatsapp"]
    recipient_type: Literal["individual"] = "individual"
    to: str = Field(pattern=r"^\d{7,15}$")
    type: Literal["template", "text"]
    template: _Template | None = None
    text: _Text | None = None


def _graph_error(status: int, code: int, message: str) -> JSONResponse:
    body = {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": secrets.token_hex(8),
        }
    }
    return JSONResponse(body, status_code=status)


class FakeGraphAPI:
    def __init__(self, *, token: str, phone_number_id: str, version: str = "v21.0") -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self.version = version
        self.received: list[dict[str, Any]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.app = Starlette(
            routes=[Route("/{version}/{phone_id}/messages", self.messages, methods=["POST"])]
        )

    async def messages(self, request: Request) -> JSONResponse:
        if request.path_params["version"] != self.version:
            return _graph_error(400, 2500, "Unknown path components")
        if request.path_params["phone_id"] != self.phone_number_id:
            return _graph_error(400, 100, "Unsupported post request: unknown phone number id")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _graph_error(401, 190, "Invalid OAuth access token.")
        if request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _graph_error(400, 100, "Expected a JSON body")
        body = json.loads(await request.body())
        try:
            msg = _GraphMessage.model_validate(body)
        except ValidationError as exc:
            return _graph_error(400, 100, f"(#100) Invalid parameter: {exc.errors()[0]['loc']}")
        if (msg.type == "template") != (msg.template is not None) or (
            (msg.type == "text") != (msg.text is not None)
        ):
            return _graph_error(400, 100, "(#100) The type does not match the object given")
        self.received.append(body)
        if self.script:
            status, answer = self.script.pop(0)
            return JSONResponse(answer, status_code=status)
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": msg.to, "wa_id": msg.to}],
            "messages": [{"id": wamid}],
        }
        if msg.type == "template":
            answer["messages"][0]["message_status"] = "accepted"
        return JSONResponse(answer)


def whatsapp_notification(
    *,
    statuses: list[dict[str, Any]] = (),
    messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> bytes:
    """A webhook POST body as the Cloud API sends it."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "1234567890"},
    }
    if statuses:
        value["statuses"] = list(statuses)
    if messages:
        value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": m["from"]} for m in messages]
        value["messages"] = list(messages)
    doc = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }
    return json.dumps(doc).encode()


def signed_whatsapp(body: bytes, app_secret: str) -> dict[str, str]:
    return {"X-Hub-Signature-256": whatsapp.signature_header(body, app_secret)}


# --- Twilio Messages API ---------------------------------------------------------------------

_TWILIO_FIELDS = {
    "To",
    "From",
    "MessagingServiceSid",
    "Body",
    "StatusCallback",
    "MediaUrl",
    "ApplicationSid",
    "MaxPrice",
    "ProvideFeedback",
    "Attempt",
    "ValidityPeriod",
    "ForceDelivery",
    "ContentRetention",
    "AddressRetention",
    "SmartEncoded",
    "PersistentAction",
    "ShortenUrls",
    "ScheduleType",
    "SendAt",
    "SendAsMms",
    "ContentSid",
    "ContentVariables",
    "RiskCheck",
}


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


class FakeTwilio:
    def __init__(self, *, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.received: list[dict[str, str]] = []
        self.script: list[tuple[int, dict[str, Any]]] = []
        self.app = Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{sid}/Messages.json", self.create, methods=["POST"])
            ]
        )

    async def create(self, request: Request) -> JSONResponse:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _twilio_error(401, 20003, "Authenticate")
        if request.path_params["sid"] != self.account_sid:
            return _twilio_error(404, 20404, "The requested resource was not found")
        ctype = request.headers.get("content-type", "").split(";")[0]
        if ctype != "application/x-www-form-urlencoded":
            return _twilio_error(400, 20001, "Expected a form-encoded body")
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        form = dict(pairs)
        if len(form) != len(pairs):
            return _twilio_error(400, 20001, "Repeated parameters")
        unknown = set(form) - _TWILIO_FIELDS
        if unknown:
            return _twilio_error(400, 20001, f"Unknown parameters: {sorted(unknown)}")
        if "To" not in form:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if "From" not in form and "MessagingServiceSid" not in form:
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if "Body" not in form and "MediaUrl" not in form:
            return _twilio_error(400, 21602, "Message body is required.")
        to = form["To"]
        if not (to.startswith("+") and to[1:].isdigit() and 8 <= len(to) <= 16):
            return _twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        self.received.append(form)
        if self.script:
            status, answer = self.script.pop(0)
            return JSONResponse(answer, status_code=status)
        sid = "SM" + secrets.token_hex(16)
        return JSONResponse(
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "body": form["Body"],
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "error_code": None,
                "error_message": None,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status_code=201,
        )


def twilio_status_callback(
    sid: str, status: str, *, account_sid: str, error_code: str | None = None
) -> dict[str, str]:
    params = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+351912345678",
    }
    if error_code:
        params["ErrorCode"] = error_code
    return params


def twilio_inbound(sid: str, *, sender: str, body: str, account_sid: str) -> dict[str, str]:
    return {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": sender,
        "FromCountry": "PT",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": "+15005550006",
    }


def signed_twilio(url: str, params: Mapping[str, str], auth_token: str) -> str:
    return sms.signature(url, params, auth_token)
