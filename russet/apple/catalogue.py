"""The declared list of every field Russet may send to or receive from Apple.

The gateway refuses to send a field that is not here (it fails closed), and the ledger report
shows every entry, exchanged or not — the live version of the published list of what an MDM
tells Apple.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Service = Literal["apns", "abm", "vpp", "activationlock"]
Direction = Literal["sent", "received"]
SubjectType = Literal["device", "user", "organisation", "server"]

SERVICE_NAMES: dict[str, str] = {
    "apns": "Apple Push Notification service",
    "abm": "Apple Business/School Manager (device enrollment)",
    "vpp": "Apps and Books",
    "activationlock": "Activation Lock (clearing it with an escrowed bypass code)",
}


@dataclass(frozen=True)
class FieldSpec:
    service: Service
    name: str
    direction: Direction
    subject: SubjectType  # what the datum is about
    used_for: str


def _fields(
    service: Service, direction: Direction, subject: SubjectType, entries: dict[str, str]
) -> list[FieldSpec]:
    return [FieldSpec(service, name, direction, subject, used_for) for name, used_for in entries.items()]


CATALOGUE: tuple[FieldSpec, ...] = tuple(
    _fields(
        "apns",
        "sent",
        "device",
        {
            "Token": "device push token from TokenUpdate, in the request path: which device APNs wakes",
            "PushMagic": "opaque value from TokenUpdate, the push body: proves the push comes from the MDM",
        },
    )
    + _fields("apns", "sent", "organisation", {"topic": "push certificate topic (apns-topic header)"})
    + _fields(
        "apns",
        "received",
        "device",
        {"apns-id": "APNs' id of the notification", "reason": "why APNs refused"},
    )
    + _fields(
        "abm",
        "sent",
        "organisation",
        {
            "server token": "OAuth consumer key and access token that sign GET /session",
            "session": "session token (X-ADM-Auth-Session) on every call",
            "cursor": "position in the device list, for paging and incremental sync",
            "profile_name": "enrollment profile name shown in Setup Assistant",
            "url": "Russet's enrollment URL that devices contact",
            "support_phone_number": "support phone shown in Setup Assistant",
            "support_email_address": "support email shown in Setup Assistant",
            "department": "department shown in Setup Assistant",
            "org_magic": "organisation identifier in the enrollment profile",
            "profile_uuid": "which enrollment profile to read or assign",
            "limit": "page size asked for when listing devices",
            "is_supervised": "enrollment profile flag: supervise the device",
            "is_mandatory": "enrollment profile flag: the user cannot skip enrollment",
            "is_mdm_removable": "enrollment profile flag: whether the user may remove management",
            "is_multi_user": "enrollment profile flag: Shared iPad",
            "await_device_configured": "enrollment profile flag: hold Setup Assistant until Russet is done",
            "auto_advance_setup": "enrollment profile flag: advance through Setup Assistant (tvOS, macOS)",
            "allow_pairing": "enrollment profile flag: allow pairing with a computer (deprecated)",
            "skip_setup_items": "Setup Assistant panes the profile skips",
            "language": "Setup Assistant language (tvOS, macOS)",
            "region": "Setup Assistant region (tvOS, macOS)",
            "anchor_certs": "certificates devices trust for Russet's enrollment URL",
            "supervising_host_certs": "certificates of computers allowed to pair with supervised devices",
            "configuration_web_url": "web page devices show for authentication before enrolling",
            "do_not_use_profile_from_backup": "enrollment profile flag: ignore the profile in a backup",
            "is_return_to_service": "enrollment profile flag: Return to Service",
        },
    )
    + _fields(
        "abm",
        "sent",
        "device",
        {
            "devices": "serial numbers to assign, unassign or look up",
            "serial_number": "one device's serial number",
        },
    )
    + _fields(
        "abm",
        "received",
        "server",
        {
            "server_name": "the MDM server's name in Apple Business Manager",
            "server_uuid": "the MDM server's id in Apple Business Manager",
            "admin_id": "the administrator who created the server token",
            "org_name": "organisation name",
            "org_email": "organisation contact email",
            "org_phone": "organisation phone",
            "org_address": "organisation address",
            "org_id": "organisation id",
            "org_type": "education or organisation",
            "org_version": "Apple Business Manager version (v1/v2)",
            "session": "session token returned by GET /session",
            "cursor": "position in the device list",
            "facilitator_id": "legacy name of admin_id",
            "org_id_hash": "hash of the organisation id (matches Apps and Books)",
            "urls": "endpoints this server token may use, with their page-size limits",
            "fetched_until": "how far a device listing has got",
            "more_to_follow": "whether another page of devices follows",
            "retry_after_seconds": "how long to wait before retrying throttled profile assignments",
        },
    )
    + _fields(
        "abm",
        "received",
        "device",
        {
            "serial_number": "device serial number assigned to this MDM server",
            "model": "device model",
            "description": "device description from the order",
            "color": "device colour",
            "asset_tag": "asset tag",
            "profile_status": "whether an enrollment profile is assigned/pushed",
            "profile_uuid": "assigned enrollment profile",
            "profile_assign_time": "when the profile was assigned",
            "device_assigned_by": "who assigned the device to this server",
            "device_assigned_date": "when the device was assigned",
            "os": "operating system family",
            "device_family": "device family",
            "profile_push_time": "when the device fetched its enrollment profile",
            "mdm_migration_deadline": "deadline for the device to migrate to this MDM server",
            "op_type": "sync operation (added, modified, deleted)",
            "op_date": "when the sync operation happened",
            "response_status": "per-device result of a profile assignment",
        },
    )
    + _fields(
        "vpp", "sent", "organisation", {"location token": "content token (sToken) authorising every call"}
    )
    + _fields(
        "vpp",
        "sent",
        "user",
        {
            "client user id": "GUID Russet generates for a person licensed by user",
            "Managed Apple ID": "the person's Managed Apple Account, to invite or license them",
            "email": "the person's email, for user-based licences",
        },
    )
    + _fields("vpp", "sent", "device", {"serial number": "device to license by serial number"})
    + _fields(
        "vpp",
        "sent",
        "organisation",
        {
            "adamId": "which app or book to license",
            "pricingParam": "licence quality (STDQ/PLUS)",
            "notification URL": "where Apple posts licence events",
            "eventId": "asynchronous operation to poll",
        },
    )
    + _fields(
        "vpp",
        "received",
        "organisation",
        {
            "orgName": "organisation of the location",
            "assets": "licence counts per asset",
            "eventId": "asynchronous operation id",
            "event status": "result of an asynchronous operation",
        },
    )
    + _fields(
        "vpp", "received", "user", {"client user id": "user known to Apple", "user status": "user state"}
    )
    + _fields("vpp", "received", "device", {"serial number": "device holding a licence"})
    # Apps and Books: what the client config, listings, event status and notifications carry.
    + _fields(
        "vpp",
        "sent",
        "organisation",
        {
            "mdmInfo": "Russet's identity as the MDM managing the location (id, name, metadata)",
            "notification auth token": "secret Apple sends back with each notification",
            "notification types": "which notifications Russet subscribes to",
            "pageIndex": "which page of a listing is asked for",
        },
    )
    + _fields(
        "vpp",
        "received",
        "organisation",
        {
            "mdmInfo": "which MDM manages the location (another MDM's id means it was taken over)",
            "location name": "the location's name in Apple Business/School Manager",
            "countryISO2ACode": "the location's country (App Store storefront)",
            "uId": "Apple's id of the location's licence library",
            "defaultPlatform": "App Store platform of the location (volumestore, enterprisestore)",
            "websiteURL": "Apple Business or School Manager",
            "limits": "Apple's request limits (service config)",
            "versionId": "version of the asset listing",
            "notification type": "kind of notification Apple posted",
            "countDelta": "change in an asset's licence count (purchase, transfer, refund)",
            "error": "Apple's error number for a request or for failed items",
        },
    )
    + _fields(
        "vpp",
        "received",
        "user",
        {
            "email": "the person's email, as Apple holds it",
            "invite code": "code of the invitation that links the person's Apple Account",
            "idHash": "hash of the Apple Account linked to the person",
        },
    )
    # Activation Lock: POST /deviceservicesworkers/escrowKeyUnlock, over mutual TLS with the push
    # certificate (russet.escrow.activation_lock).
    + _fields(
        "activationlock",
        "sent",
        "device",
        {
            "serial": "serial number of the device whose Activation Lock is cleared (query)",
            "productType": "the device's model identifier, e.g. iPhone15,2 (query)",
            "escrowKey": "the Activation Lock bypass code the device gave Russet (form)",
            "imei": "a cellular device's IMEI, from its DeviceInformation answer (query)",
            "meid": "a cellular device's MEID, from its DeviceInformation answer (query)",
        },
    )
    + _fields(
        "activationlock",
        "sent",
        "organisation",
        {
            "orgName": "the organisation's name, as configured for the connection (form)",
            "guid": "a random id Russet made for the connection (form)",
        },
    )
)

_INDEX: dict[tuple[str, str, str], FieldSpec] = {(f.service, f.direction, f.name): f for f in CATALOGUE}


class UndeclaredField(ValueError):
    """Russet tried to exchange a field the catalogue does not declare; nothing was sent."""


def spec(service: str, direction: str, name: str) -> FieldSpec:
    try:
        return _INDEX[(service, direction, name)]
    except KeyError:
        raise UndeclaredField(
            f"{service}: field {name!r} is not declared as {direction} in the catalogue; "
            "refusing to exchange it"
        ) from None
