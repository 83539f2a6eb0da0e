"""The Settings command: a batch of device settings, each item tagged by its `Item` name."""

from __future__ import annotations

from russet.commands.applications import APP_ATTRIBUTES
from russet.commands.base import Command, Param

_ENABLED = {"Enabled": Param("boolean", required=True)}
_GRACE_PERIODS = (0, 60, 300, 900, 3600, 14400)  # seconds

#: The keys of each Settings item besides `Item`, by `Item` name, as Apple's schema lists them.
SETTINGS_ITEMS: dict[str, dict[str, Param]] = {
    "Wallpaper": {
        "Image": Param("data", required=True),  # PNG or JPEG
        "Where": Param("integer", required=True, choices=(1, 2, 3)),  # Lock screen, Home screen, both
    },
    "DataRoaming": _ENABLED,
    "VoiceRoaming": _ENABLED,
    "PersonalHotspot": _ENABLED,
    "Bluetooth": _ENABLED,
    "DiagnosticSubmission": _ENABLED,
    "AppAnalytics": _ENABLED,
    "ApplicationConfiguration": {
        "Identifier": Param("string", required=True),
        "Configuration": Param("dictionary"),
    },
    "ApplicationAttributes": {
        "Identifier": Param("string", required=True),
        "Attributes": Param("dictionary", subkeys=APP_ATTRIBUTES),
    },
    "DeviceName": {"DeviceName": Param("string", required=True)},
    "HostName": {"HostName": Param("string", required=True)},
    "OrganizationInfo": {
        "OrganizationInfo": Param(
            "dictionary",
            subkeys={
                "OrganizationName": Param("string", required=True),
                "OrganizationShortName": Param("string"),
                "OrganizationAddress": Param("string"),
                "OrganizationPhone": Param("string"),
                "OrganizationEmail": Param("string"),
                "OrganizationMagic": Param("string"),
            },
        )
    },
    "MDMOptions": {
        "MDMOptions": Param(
            "dictionary",
            required=True,
            subkeys={
                "ActivationLockAllowedWhileSupervised": Param("boolean"),
                "BootstrapTokenAllowed": Param("boolean"),
                "PromptUserToAllowBootstrapTokenForAuthentication": Param("boolean"),
            },
        )
    },
    "MaximumResidentUsers": {"MaximumResidentUsers": Param("integer", required=True)},
    "SharedDeviceConfiguration": {
        "QuotaSize": Param("integer"),
        "ResidentUsers": Param("integer"),
        "UserSessionTimeout": Param("integer"),
        "TemporarySessionTimeout": Param("integer"),
        "TemporarySessionOnly": Param("boolean"),
        "ManagedAppleIDDefaultDomains": Param("array", item=Param("string")),
        "OnlineAuthenticationGracePeriod": Param("integer"),
        "SkipLanguageAndLocaleSetupForNewUsers": Param("boolean"),
        "AwaitUserConfiguration": Param("dictionary", subkeys=_ENABLED),
        "PasscodePolicy": Param(
            "dictionary",
            subkeys={
                "PasscodeLockGracePeriod": Param("integer", choices=_GRACE_PERIODS),
                "AutoLockTime": Param("integer"),
            },
        ),
    },
    "PasscodeLockGracePeriod": {
        "PasscodeLockGracePeriod": Param("integer", required=True, choices=_GRACE_PERIODS)
    },
    "TimeZone": {"TimeZone": Param("string", required=True)},  # IANA name, e.g. Europe/Paris
    "SoftwareUpdateSettings": {"RecommendationCadence": Param("integer", required=True, choices=(0, 1, 2))},
    "AccessibilitySettings": {
        "BoldTextEnabled": Param("boolean"),
        "IncreaseContrastEnabled": Param("boolean"),
        "ReduceMotionEnabled": Param("boolean"),
        "ReduceTransparencyEnabled": Param("boolean"),
        "TextSize": Param("integer", choices=tuple(range(12))),
        "TouchAccommodationsEnabled": Param("boolean"),
        "VoiceOverEnabled": Param("boolean"),
        "ZoomEnabled": Param("boolean"),
        "GrayscaleEnabled": Param("boolean"),
    },
}


class Settings(Command):
    """Change device settings (name, wallpaper, roaming, time zone, app configuration...).

    The device answers each item separately, so one bad item does not hold back the others;
    Russet still refuses an item whose `Item` or keys Apple does not define.
    """

    request_type = "Settings"
    params = {"Settings": Param("array", required=True, item=Param("dictionary", variants=SETTINGS_ITEMS))}
