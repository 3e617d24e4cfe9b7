"""Errors shaped as each real service answers them, so the SDK's exception handler
finds ``error_code`` and ``error_msg`` in every one of them.

| service | body |
|---|---|
| API gateway (signing) | ``{"error_code", "error_msg", "request_id"}`` |
| IAM | ``{"error": {"code", "message", "title"}}`` |
| ECS, EVS, IMS | ``{"error": {"code", "message"}}`` |
| VPC, EIP | ``{"code", "message"}`` |
| KMS | ``{"error": {"error_code", "error_msg"}}`` |
| RFS | ``{"error_code", "error_msg"}`` |
"""

from __future__ import annotations

from http import HTTPStatus

# The service part of an IAM action ("ecs" of "ecs:cloudServers:create") -> error style.
STYLE_OF_ACTION_SERVICE = {
    "iam": "iam",
    "ecs": "ecs",
    "evs": "ecs",
    "ims": "ecs",
    "vpc": "vpc",
    "kms": "kms",
    "rf": "rfs",
}

# The code a refused policy check answers, per style.
FORBIDDEN_CODE = {
    "iam": "IAM.0003",
    "ecs": "Ecs.0003",
    "vpc": "VPC.0003",
    "kms": "KMS.0303",
    "rfs": "RF.0403",
}


class CloudError(Exception):
    """An answer other than success. ``style`` picks the body shape (see the table)."""

    def __init__(self, status: int, style: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.style = style
        self.code = code
        self.message = message

    def body(self, request_id: str) -> dict:
        if self.style == "apigw":
            return {"error_code": self.code, "error_msg": self.message, "request_id": request_id}
        if self.style == "iam":
            title = HTTPStatus(self.status).phrase
            return {"error": {"code": self.code, "message": self.message, "title": title}}
        if self.style == "ecs":
            return {"error": {"code": self.code, "message": self.message}}
        if self.style == "vpc":
            return {"code": self.code, "message": self.message}
        if self.style == "kms":
            return {"error": {"error_code": self.code, "error_msg": self.message}}
        return {"error_code": self.code, "error_msg": self.message}


def style_of(action: str) -> str:
    return STYLE_OF_ACTION_SERVICE.get(action.split(":", 1)[0].lower(), "rfs")


def not_found(style: str, what: str, code: str | None = None) -> CloudError:
    codes = {"iam": "IAM.0004", "ecs": "Ecs.0114", "vpc": "VPC.0202", "kms": "KMS.0205"}
    return CloudError(404, style, code or codes.get(style, "RF.0404"), f"{what} not found.")


def bad_request(style: str, message: str, code: str | None = None) -> CloudError:
    codes = {"iam": "IAM.0001", "ecs": "Ecs.0005", "vpc": "VPC.0002", "kms": "KMS.0201"}
    return CloudError(400, style, code or codes.get(style, "RF.0400"), message)


def conflict(style: str, message: str, code: str | None = None) -> CloudError:
    codes = {"iam": "IAM.0008", "ecs": "Ecs.0009", "vpc": "VPC.0009", "kms": "KMS.0209"}
    return CloudError(409, style, code or codes.get(style, "RF.0409"), message)


def quota_exceeded(style: str, quota: str, needed: int, available: int) -> CloudError:
    codes = {"ecs": "Ecs.0605", "vpc": "VPC.0106"}
    message = f"Quota exceeded for {quota}: needed {needed}, available {available}."
    return CloudError(403, style, codes.get(style, "Quota.0001"), message)
