"""Phone numbers and e-mail addresses shown in part to staff without the "view personal data" permission, in the
admin's lists and pages and in exports (see README "Security")."""

from django.conf import settings

PERSONAL_DATA_PERMISSION = "members.view_personal_data"


def can_view_personal_data(user) -> bool:
    return user.has_perm(PERSONAL_DATA_PERMISSION)


def mask_phone(phone: str | None) -> str | None:
    """'+8613800138000' -> '138****8000' (a number of the home region without its country code);
    '+447911123456' -> '+44791****3456'. Short or empty values are hidden whole."""
    if not phone:
        return phone
    home_prefix = {"CN": "+86"}.get(settings.DEFAULT_PHONE_REGION)
    shown = phone[len(home_prefix) :] if home_prefix and phone.startswith(home_prefix) else phone
    if len(shown) < 8:
        return "****"
    return f"{shown[:-8]}****{shown[-4:]}" if shown.startswith("+") else f"{shown[:3]}****{shown[-4:]}"


def mask_email(email: str | None) -> str | None:
    """'zhang.wei@example.com' -> 'z***@example.com'."""
    if not email:
        return email
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"
