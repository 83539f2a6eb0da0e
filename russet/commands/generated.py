"""Every MDM command of Apple's schemas, as builders: generated, do not edit.

Written by `python -m russet.commands.codegen` from russet/apple_schemas/mdm/commands/*.yaml;
tests/test_command_schemas.py fails when this file and the schemas disagree. Hand-written
extras subclass these classes (russet/commands/*.py).
"""

from __future__ import annotations

from russet.commands.base import Command, Param
from russet.commands.support import Support


class AccountConfiguration(Command):
    """Account Configuration Command: This command can be sent to the device to have it create the local
    administrator account (thereby skipping the page to create this account in Setup Assistant)
    """

    # commands/account.configuration.yaml
    request_type = "AccountConfiguration"
    title = "Account Configuration Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.11",
            requires_ade=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "SkipPrimarySetupAccountCreation": Param("boolean"),
        "SetPrimarySetupAccountAsRegularUser": Param("boolean"),
        "PrimaryAccountFullName": Param("string", support={"macOS": Support(introduced="10.15")}),
        "PrimaryAccountUserName": Param("string", support={"macOS": Support(introduced="10.15")}),
        "DontAutoPopulatePrimaryAccountInfo": Param(
            "boolean",
            support={"macOS": Support(introduced="10.15")},
        ),
        "LockPrimaryAccountInfo": Param("boolean", support={"macOS": Support(introduced="10.15")}),
        "AutoSetupAdminAccounts": Param(
            "array",
            item=Param(
                "dictionary",
                subkeys={
                    "shortName": Param("string", required=True),
                    "fullName": Param("string"),
                    "passwordHash": Param("data"),
                    "hidden": Param("boolean"),
                },
            ),
        ),
        "ManagedLocalUserShortName": Param("string", support={"macOS": Support(introduced="11.0")}),
    }


class ActivationLockBypassCode(Command):
    """Activation Lock Bypass Code Command: Retrieves the Activation Lock bypass code from the device."""

    # commands/device.activationlock.bypasscode.yaml
    request_type = "ActivationLockBypassCode"
    title = "Activation Lock Bypass Code Command"
    from_schema = True
    support = {
        "iOS": Support(introduced="7.1", supervised=True, user_enrollment=False, shared_ipad="forbidden"),
        "macOS": Support(
            introduced="10.15",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(introduced="2.0", supervised=True, user_enrollment=False),
        "watchOS": Support(available=False),
    }


class ActiveNSExtensions(Command):
    """Active NSExtensions Command: Returns information about the active NSExtensions for a particular
    user.
    """

    # commands/application.extensions.listactive.yaml
    request_type = "ActiveNSExtensions"
    title = "Active NSExtensions Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=False,
            user_channel=True,
            access_rights="QueryInstalledApps",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"FilterExtensionPoints": Param("array", item=Param("string"))}


class ApplyRedemptionCode(Command):
    """Apply Redemption Code Command: If a redemption code is needed during app installation, the server
    can use this command to complete the app installation.
    """

    # commands/application.redemptioncode.yaml
    request_type = "ApplyRedemptionCode"
    title = "Apply Redemption Code Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=False,
            shared_ipad="forbidden",
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"Identifier": Param("string", required=True), "RedemptionCode": Param("string", required=True)}


class AvailableOSUpdates(Command):
    """Available OS Updates Command: Queries the device for a list of available OS updates. On OS X, a
    ScheduleOSUpdateScan must be performed to update the results returned by this query.
    """

    # commands/system.update.available.yaml
    request_type = "AvailableOSUpdates"
    title = "Available OS Updates Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.0",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(introduced="10.11", user_enrollment=False, device_channel=True, user_channel=False),
        "tvOS": Support(
            introduced="12.0",
            supervised=True,
            device_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class CertificateList(Command):
    """Certificate List Command: This command allows the server to retrieve the list of installed
    certificates on the device. The command requires that the server has the Inspect Profile Manifest
    privilege. For userenrollment, this request will limit to certificates pushed via MDM. Starting with
    iOS 15.4, the CertificateList command will return a Not Now response prior to the first time a
    passcode-protected device is unlocked after boot. Between iOS 15.0 and iOS 15.4, devices in that
    state did not respond with Not Now, but some identity certificates may not have been reported in the
    response.
    """

    # commands/certificate.list.yaml
    request_type = "CertificateList"
    title = "Certificate List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowInspection",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowInspection",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowInspection"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowInspection"),
        "watchOS": Support(introduced="10.0", access_rights="AllowInspection"),
    }
    params = {
        "ManagedOnly": Param(
            "boolean",
            support={
                "iOS": Support(introduced="13.0"),
                "macOS": Support(introduced="10.15"),
                "tvOS": Support(introduced="13.0"),
            },
        ),
    }


class ClearActivationLockBypassCode(Command):
    """Clear Activation Lock Bypass Code Command: Clears the Activation Lock bypass code from the device."""

    # commands/device.activationlock.clearbypasscode.yaml
    request_type = "ClearActivationLockBypassCode"
    title = "Clear Activation Lock Bypass Code Command"
    from_schema = True
    support = {
        "iOS": Support(introduced="7.1", supervised=True, user_enrollment=False, shared_ipad="forbidden"),
        "macOS": Support(
            introduced="10.15",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(introduced="2.0", supervised=True, user_enrollment=False),
        "watchOS": Support(available=False),
    }


class ClearPasscode(Command):
    """Clear Passcode Command: This command allows the server to clear the passcode on the device. This
    command requires the Device Lock and Passcode Removal right.
    """

    # commands/passcode.clear.yaml
    request_type = "ClearPasscode"
    title = "Clear Passcode Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=False,
            shared_ipad="forbidden",
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(
            introduced="1.1",
            user_enrollment=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "watchOS": Support(introduced="10.0", access_rights="AllowPasscodeRemovalAndLock"),
    }
    params = {"UnlockToken": Param("data", required=True)}


class ClearRestrictionsPassword(Command):
    """Clear Restrictions Password Command: This command clears the restrictions passcode, either disabling
    parental controls or allowing you to edit them.
    """

    # commands/device.restrictions.clearpassword.yaml
    request_type = "ClearRestrictionsPassword"
    title = "Clear Restrictions Password Command"
    from_schema = True
    support = {
        "iOS": Support(introduced="8.0", supervised=True, user_enrollment=False, shared_ipad="forbidden"),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class ContentCachingInformation(Command):
    """Content Caching Information Command: This command allows the server to query for information about
    Content Caching.
    """

    # commands/information.contentcaching.yaml
    request_type = "ContentCachingInformation"
    title = "Content Caching Information Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.15.4",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowQueryNetworkInformation",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class DeclarativeManagement(Command):
    """Declarative Management Command: This command allows the server to turn on the Declarative Management
    engine on the device (the first time it is used), or to trigger a Declarative Management
    synchronization operation.
    """

    # commands/declarativemanagement.yaml
    request_type = "DeclarativeManagement"
    title = "Declarative Management Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="15.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
        ),
        "macOS": Support(introduced="13.0", user_enrollment=True, device_channel=True, user_channel=True),
        "tvOS": Support(introduced="16.0"),
        "visionOS": Support(introduced="1.1", user_enrollment=True),
        "watchOS": Support(introduced="10.0"),
    }
    params = {"Data": Param("data")}


class DeleteUser(Command):
    """Delete User Command: This command allows the server to delete a user that has an active account on
    the device.
    """

    # commands/user.delete.yaml
    request_type = "DeleteUser"
    title = "Delete User Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            user_enrollment=False,
            shared_ipad="required",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(
            introduced="10.13",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "UserName": Param("string"),
        "ForceDeletion": Param("boolean", support={"macOS": Support(available=False)}),
        "DeleteAllUsers": Param(
            "boolean",
            support={"iOS": Support(introduced="14.0"), "macOS": Support(available=False)},
        ),
    }


class DeviceConfigured(Command):
    """Device Configured Command: Informs the device that it can continue past DEP enrollment. Only works
    on devices in DEP that have their cloud configuration set to await configuration.
    """

    # commands/device.configured.yaml
    request_type = "DeviceConfigured"
    title = "Device Configured Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.0",
            supervised=True,
            requires_ade=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(
            introduced="10.11",
            requires_ade=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(introduced="10.2", supervised=True),
        "visionOS": Support(introduced="2.0", supervised=True, requires_ade=True, user_enrollment=False),
        "watchOS": Support(available=False),
    }


class DeviceInformation(Command):
    """Device Information Command: This command allows the server to query for specific device information.
    It's supported in the user channel.
    """

    # commands/information.device.yaml
    request_type = "DeviceInformation"
    title = "Device Information Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="Special Case",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="Special Case",
        ),
        "tvOS": Support(introduced="9.0", access_rights="Special Case"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="Special Case"),
        "watchOS": Support(introduced="10.0", access_rights="Special Case"),
    }
    params = {
        "Queries": Param("array", required=True, item=Param("string")),
        "DeviceAttestationNonce": Param(
            "data",
            support={
                "iOS": Support(introduced="16.0", user_enrollment=True),
                "macOS": Support(introduced="14.0"),
                "tvOS": Support(introduced="16.0"),
                "visionOS": Support(user_enrollment=True),
            },
        ),
    }


class DeviceLocation(Command):
    """Device Location Command: This command allows the server to ask for the device's location if it is in
    MDM lost mode.
    """

    # commands/device.lostmode.location.yaml
    request_type = "DeviceLocation"
    title = "Device Location Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class DeviceLock(Command):
    """Device Lock Command: This command allows the server to immediately lock the device. This command
    requires the Device Lock and Passcode Removal right.
    """

    # commands/device.lock.yaml
    request_type = "DeviceLock"
    title = "Device Lock Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(
            introduced="2.0",
            user_enrollment=True,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "watchOS": Support(introduced="10.0", access_rights="AllowPasscodeRemovalAndLock"),
    }
    params = {
        "Message": Param(
            "string",
            support={
                "iOS": Support(introduced="7.0", shared_ipad="ignored"),
                "macOS": Support(introduced="10.14"),
                "visionOS": Support(available=False),
            },
        ),
        "PhoneNumber": Param(
            "string",
            support={
                "iOS": Support(introduced="7.0", shared_ipad="ignored"),
                "macOS": Support(introduced="11.5"),
                "visionOS": Support(available=False),
            },
        ),
        "PIN": Param(
            "string",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="10.8"),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
    }


class DisableLostMode(Command):
    """Disable Lost Mode Command: This command allows the server to take the device out of MDM lost mode."""

    # commands/device.lostmode.disable.yaml
    request_type = "DisableLostMode"
    title = "Disable Lost Mode Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class DisableRemoteDesktop(Command):
    """Disable Remote Desktop Command: Disable Remote Desktop on the device."""

    # commands/remotedesktop.disable.yaml
    request_type = "DisableRemoteDesktop"
    title = "Disable Remote Desktop Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.14.4",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class EnableLostMode(Command):
    """Enable Lost Mode Command: This command allows the server to put the device in MDM lost mode, with a
    message, phone number, and footnote text. A message or phone number must be provided.
    """

    # commands/device.lostmode.enable.yaml
    request_type = "EnableLostMode"
    title = "Enable Lost Mode Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"Message": Param("string"), "PhoneNumber": Param("string"), "Footnote": Param("string")}


class EnableRemoteDesktop(Command):
    """Enable Remote Desktop Command: Enable Remote Desktop on the device."""

    # commands/remotedesktop.enable.yaml
    request_type = "EnableRemoteDesktop"
    title = "Enable Remote Desktop Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.14.4",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class EraseDevice(Command):
    """Erase Device Command: This command allows the server to remotely erase the device. This command
    requires the Device Erase right.
    """

    # commands/device.erase.yaml
    request_type = "EraseDevice"
    title = "Erase Device Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowDeviceErase",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowDeviceErase",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowDeviceErase"),
        "visionOS": Support(introduced="1.1", user_enrollment=False, access_rights="AllowDeviceErase"),
        "watchOS": Support(introduced="10.0", access_rights="AllowDeviceErase"),
    }
    params = {
        "PreserveDataPlan": Param(
            "boolean",
            support={
                "iOS": Support(introduced="11.0"),
                "macOS": Support(available=False),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
            },
        ),
        "DisallowProximitySetup": Param(
            "boolean",
            support={
                "iOS": Support(introduced="11.3", shared_ipad="forbidden"),
                "macOS": Support(available=False),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
        "PIN": Param(
            "string",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="10.8"),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
        "ObliterationBehavior": Param(
            "string",
            choices=("Default", "DoNotObliterate", "ObliterateWithWarning", "Always"),
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="12.0"),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
        "ReturnToService": Param(
            "dictionary",
            subkeys={
                "Enabled": Param("boolean", required=True),
                "WiFiProfileData": Param("data"),
                "MDMProfileData": Param("data"),
            },
            support={
                "iOS": Support(introduced="17.0"),
                "macOS": Support(available=False),
                "tvOS": Support(introduced="18.0"),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
    }


class InstallApplication(Command):
    """Install Application Command: This command allows the server to install an application on a device.
    If the app is already being managed, this command will update the app. Prior to iOS 16.0 and tvOS
    16.0, this command would return NotNow when Setup Assistant was running. Starting in iOS 16.0 and
    tvOS 16.0, the command may be sent to supervised devices during Setup Assistant. However, you should
    only attempt to install device-based VPP apps or enterprise apps while in the awaiting configuration
    state, as the device will likely not yet have an App Store account configured, and thus commands
    that depend on one will fail.
    """

    # commands/application.install.yaml
    request_type = "InstallApplication"
    title = "Install Application Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="10.9",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(introduced="10.0", access_rights="AllowAppInstallation"),
    }
    params = {
        "iTunesStoreID": Param("integer"),
        "Identifier": Param("string", support={"iOS": Support(introduced="7.0")}),
        "Options": Param(
            "dictionary",
            subkeys={"PurchaseMethod": Param("integer", choices=(0, 1))},
            support={"iOS": Support(introduced="7.0")},
        ),
        "ManifestURL": Param("string", support={"iOS": Support(introduced="7.0")}),
        "ManagementFlags": Param(
            "integer",
            choices=(1, 4, 5),
            support={"macOS": Support(introduced="11.0", user_enrollment=False)},
        ),
        "Configuration": Param(
            "dictionary",
            support={"iOS": Support(introduced="7.0"), "macOS": Support(introduced="11.0")},
        ),
        "Attributes": Param(
            "dictionary",
            subkeys={
                "VPNUUID": Param("string", support={"tvOS": Support(available=False)}),
                "ContentFilterUUID": Param(
                    "string",
                    support={
                        "iOS": Support(introduced="16.0"),
                        "tvOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "DNSProxyUUID": Param(
                    "string",
                    support={
                        "iOS": Support(introduced="16.0"),
                        "tvOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "RelayUUID": Param(
                    "string",
                    support={
                        "iOS": Support(introduced="17.0"),
                        "tvOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "AssociatedDomains": Param(
                    "array",
                    item=Param("string"),
                    support={"iOS": Support(introduced="13.0"), "tvOS": Support(available=False)},
                ),
                "AssociatedDomainsEnableDirectDownloads": Param(
                    "boolean",
                    support={"iOS": Support(introduced="14.0"), "tvOS": Support(available=False)},
                ),
                "Removable": Param(
                    "boolean",
                    support={"iOS": Support(introduced="14.0"), "tvOS": Support(introduced="14.0")},
                ),
                "TapToPayScreenLock": Param(
                    "boolean",
                    support={
                        "iOS": Support(introduced="16.4"),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "CellularSliceUUID": Param(
                    "string",
                    support={
                        "iOS": Support(introduced="17.0"),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "Hideable": Param(
                    "boolean",
                    support={
                        "iOS": Support(introduced="18.1"),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
                "Lockable": Param(
                    "boolean",
                    support={
                        "iOS": Support(introduced="18.1"),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                ),
            },
            support={"iOS": Support(introduced="7.0"), "macOS": Support(available=False)},
        ),
        "ChangeManagementState": Param(
            "string",
            choices=("Managed",),
            support={
                "iOS": Support(introduced="9.0", user_enrollment=False),
                "macOS": Support(introduced="11.0", user_enrollment=False),
                "visionOS": Support(user_enrollment=False),
            },
        ),
        "InstallAsManaged": Param(
            "boolean",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.0", user_enrollment=False),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
        "iOSApp": Param(
            "boolean",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.0"),
                "tvOS": Support(available=False),
                "visionOS": Support(available=False),
                "watchOS": Support(available=False),
            },
        ),
    }


class InstallEnterpriseApplication(Command):
    """Install Enterprise Application Command: This command allows the server to install enterprise
    applications on a device. It provides a more secure version of 'InstallApplication' that specifies a
    'ManifestURL'.
    """

    # commands/application.install.enterprise.yaml
    request_type = "InstallEnterpriseApplication"
    title = "Install Enterprise Application Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.13.6",
            user_enrollment=True,
            device_channel=True,
            user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "Manifest": Param("dictionary"),
        "ManifestURL": Param("string"),
        "ManifestURLPinningCerts": Param("array", item=Param("data")),
        "PinningRevocationCheckRequired": Param("boolean"),
        "InstallAsManaged": Param(
            "boolean",
            support={"macOS": Support(introduced="11.0", user_enrollment=False)},
        ),
        "ManagementFlags": Param(
            "integer",
            choices=(1,),
            support={"macOS": Support(introduced="11.0", user_enrollment=False)},
        ),
        "Configuration": Param("dictionary", support={"macOS": Support(introduced="11.0")}),
        "ChangeManagementState": Param(
            "string",
            choices=("Managed",),
            support={"macOS": Support(introduced="11.0", user_enrollment=False)},
        ),
        "iOSApp": Param(
            "boolean",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.0"),
                "tvOS": Support(available=False),
            },
        ),
    }


class InstallMedia(Command):
    """Install Media Command: This command allows the server to install a book on a device. If the book is
    already being managed, this command will update the book.
    """

    # commands/media.install.yaml
    request_type = "InstallMedia"
    title = "Install Media Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="8.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="10.9",
            user_enrollment=False,
            device_channel=False,
            user_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "iTunesStoreID": Param("integer"),
        "MediaURL": Param("string", support={"macOS": Support(available=False)}),
        "MediaType": Param("string", required=True, choices=("Book",)),
        "PersistentID": Param("string", support={"macOS": Support(available=False)}),
        "Kind": Param(
            "string",
            choices=("pdf", "epub", "ibooks"),
            support={"macOS": Support(available=False)},
        ),
        "Version": Param("string", support={"macOS": Support(available=False)}),
        "Author": Param("string", support={"macOS": Support(available=False)}),
        "Title": Param("string", support={"macOS": Support(available=False)}),
    }


class InstallProfile(Command):
    """Install Profile Command: This command allows the host to install a configuration profile. The
    profile may be encrypted using any installed identity certificate. The profile may also be signed.
    This command requires the Profile Installation and Removal right. It's supported in the user
    channel.
    """

    # commands/profile.install.yaml
    request_type = "InstallProfile"
    title = "Install Profile Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="AllowInstallationRemoval",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowInstallationRemoval",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowInstallationRemoval"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowInstallationRemoval"),
        "watchOS": Support(introduced="10.0", access_rights="AllowInstallationRemoval"),
    }
    params = {"Payload": Param("data", required=True)}


class InstallProvisioningProfile(Command):
    """Install Provisioning Profile Command: This command allows the server to install a provisioning
    profile. No error occurs if the provisioning profile is already installed. This command requires the
    Provisioning Profile Installation and Removal right. On macOS, this command is for iOS and iPadOS
    style provisioning profiles only.
    """

    # commands/profile.provisioning.install.yaml
    request_type = "InstallProvisioningProfile"
    title = "Install Provisioning Profile Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowProvisioningInstallationRemoval",
        ),
        "macOS": Support(introduced="11.0", user_enrollment=True, device_channel=True, user_channel=False),
        "tvOS": Support(introduced="10.2", access_rights="AllowProvisioningInstallationRemoval"),
        "visionOS": Support(
            introduced="1.1",
            user_enrollment=True,
            access_rights="AllowProvisioningInstallationRemoval",
        ),
        "watchOS": Support(introduced="10.0", access_rights="AllowProvisioningInstallationRemoval"),
    }
    params = {"ProvisioningProfile": Param("data", required=True)}


class InstalledApplicationList(Command):
    """Installed Application List Command: This command allows the server to query for installed 3rd party
    applications.
    """

    # commands/application.installed.list.yaml
    request_type = "InstalledApplicationList"
    title = "Installed Application List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowQueryApplications",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=False,
            device_channel=True,
            user_channel=True,
            access_rights="AllowQueryApplications",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowQueryApplications"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowQueryApplications"),
        "watchOS": Support(introduced="10.0", access_rights="AllowQueryApplications"),
    }
    params = {
        "Identifiers": Param(
            "array",
            item=Param("string"),
            support={"iOS": Support(introduced="7.0"), "macOS": Support(introduced="10.15")},
        ),
        "ManagedAppsOnly": Param(
            "boolean",
            support={"iOS": Support(introduced="7.0"), "macOS": Support(introduced="10.15")},
        ),
        "Items": Param(
            "array",
            item=Param(
                "string",
                choices=(
                    "AdHocCodeSigned",
                    "AppStoreVendable",
                    "BetaApp",
                    "BundleSize",
                    "DeviceBasedVPP",
                    "DistributorIdentifier",
                    "DynamicSize",
                    "ExternalVersionIdentifier",
                    "HasUpdateAvailable",
                    "Identifier",
                    "Installing",
                    "IsAppClip",
                    "IsValidated",
                    "Name",
                    "ShortVersion",
                    "Version",
                ),
            ),
            support={
                "iOS": Support(introduced="14.0"),
                "macOS": Support(available=False),
                "tvOS": Support(introduced="14.0"),
            },
        ),
    }


class InviteToProgram(Command):
    """Invite To Program Command: This command allows a server to invite a user to join a program."""

    # commands/application.invitetoprogram.yaml
    request_type = "InviteToProgram"
    title = "Invite To Program Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=False,
            shared_ipad_user_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(introduced="10.9", user_enrollment=False, device_channel=False, user_channel=True),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "ProgramID": Param("string", required=True, choices=("com.apple.cloudvpp",)),
        "InvitationURL": Param("string", required=True),
    }


class LOMDeviceRequest(Command):
    """LOM Device Request Command: Issues LOM requests to devices."""

    # commands/lom.devicerequest.yaml
    request_type = "LOMDeviceRequest"
    title = "LOM Device Request Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="11.0",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "RequestList": Param(
            "array",
            required=True,
            item=Param(
                "dictionary",
                subkeys={
                    "DeviceRequestType": Param(
                        "string",
                        required=True,
                        choices=("PowerON", "PowerOFF", "Reset"),
                    ),
                    "DeviceRequestUUID": Param("string", required=True),
                    "DeviceDNSName": Param("string", required=True),
                    "PrimaryIPv6AddressList": Param("array", required=True, item=Param("string")),
                    "SecondaryIPv6AddressList": Param("array", required=True, item=Param("string")),
                    "LOMProtocolVersion": Param("integer", required=True),
                },
            ),
        ),
    }


class LOMSetupRequest(Command):
    """LOM Setup Request Command: Queries the device for LOM setup information such as IP addresses,
    protocol version, etc.
    """

    # commands/lom.setuprequest.yaml
    request_type = "LOMSetupRequest"
    title = "LOM Setup Request Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="11.0",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class LogOutUser(Command):
    """Log Out User Command: This command allows the server to force the current user to logout."""

    # commands/user.logout.yaml
    request_type = "LogOutUser"
    title = "Log Out User Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            user_enrollment=False,
            shared_ipad="required",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class ManagedApplicationAttributes(Command):
    """Managed Application Attributes Command: Queries managed application attributes. Attributes can be
    set on managed apps. These attributes can be changed over time.
    """

    # commands/managed.application.attributes.yaml
    request_type = "ManagedApplicationAttributes"
    title = "Managed Application Attributes Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(introduced="10.0", access_rights="AllowAppInstallation"),
    }
    params = {"Identifiers": Param("array", required=True, item=Param("string"))}


class ManagedApplicationConfiguration(Command):
    """Managed Application Configuration Command: This command queries the device for the current
    configuration of managed applications. This command requires the App Management right. macOS
    supports this command as of 10.15, on the device channel and for User Enrollments only, because
    Settings->ApplicationConfiguration is supported. Since macOS does not support Managed Applications,
    this command can be used for any bundle identifier.
    """

    # commands/managed.application.configuration.yaml
    request_type = "ManagedApplicationConfiguration"
    title = "Managed Application Configuration Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="10.15",
            user_enrollment=True,
            device_channel=True,
            user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(introduced="10.0", access_rights="AllowAppInstallation"),
    }
    params = {"Identifiers": Param("array", required=True, item=Param("string"))}


class ManagedApplicationFeedback(Command):
    """Managed Application Feedback Command: This command queries the device for application feedback
    information. This command requires the App Management right.
    """

    # commands/managed.application.feedback.yaml
    request_type = "ManagedApplicationFeedback"
    title = "Managed Application Feedback Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="11.0",
            user_enrollment=False,
            device_channel=False,
            user_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(available=False),
    }
    params = {
        "Identifiers": Param("array", required=True, item=Param("string")),
        "DeleteFeedback": Param("boolean"),
    }


class ManagedApplicationList(Command):
    """Managed Application List Command: This command allows the server to query the status of managed
    apps. Certain statuses are transient. Once they are reported to the server, the entries for the apps
    are removed from the next query. macOS supports this command on the user channel starting with macOS
    11.3.
    """

    # commands/application.managed.list.yaml
    request_type = "ManagedApplicationList"
    title = "Managed Application List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="11.0",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(introduced="10.0", access_rights="AllowAppInstallation"),
    }
    params = {"Identifiers": Param("array", item=Param("string"), support={"iOS": Support(introduced="7.0")})}


class ManagedMediaList(Command):
    """Managed Media List Command: This command allows the server to query for installed 3rd party
    applications.
    """

    # commands/media.managed.list.yaml
    request_type = "ManagedMediaList"
    title = "Managed Media List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="8.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class NSExtensionMappings(Command):
    """NSExtension Mappings Command: This command returns information about installed extensions for a
    user.
    """

    # commands/application.extensions.mappings.yaml
    request_type = "NSExtensionMappings"
    title = "NSExtension Mappings Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=False,
            user_channel=True,
            access_rights="QueryInstalledApps",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class OSUpdateStatus(Command):
    """OS Update Status Command: Queries the device for the status of software updates."""

    # commands/system.update.status.yaml
    request_type = "OSUpdateStatus"
    title = "OS Update Status Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.0",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="10.11.5",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(
            introduced="12.0",
            supervised=True,
            device_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class PlayLostModeSound(Command):
    """Play Lost Mode Sound Command: This command allows the server to tell the device to play a sound if
    it is in MDM Lost Mode. The sound will play until the device is either removed from Lost Mode or a
    user disables the sound from the device.
    """

    # commands/device.lostmode.playsound.yaml
    request_type = "PlayLostModeSound"
    title = "Play Lost Mode Sound Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="10.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class ProfileList(Command):
    """Profile List Command: This command allows the MDM server to query for the profiles installed on the
    device. This command requires the Inspect Profile Manifest right. It's supported on the user
    channel.
    """

    # commands/profile.list.yaml
    request_type = "ProfileList"
    title = "Profile List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="AllowInspection",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowInspection",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowInspection"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowInspection"),
        "watchOS": Support(introduced="10.0", access_rights="AllowInspection"),
    }
    params = {
        "ManagedOnly": Param(
            "boolean",
            support={
                "iOS": Support(introduced="13.0"),
                "macOS": Support(introduced="10.15"),
                "tvOS": Support(introduced="13.0"),
            },
        ),
    }


class ProvisioningProfileList(Command):
    """Provisioning Profile List Command: This command allows the server to retrieve the list of installed
    provisioning profiles on the device. This command requires the Inspect Provisioning Profiles right.
    On macOS, this command is for iOS and iPadOS style provisioning profiles only.
    """

    # commands/profile.provisioning.list.yaml
    request_type = "ProvisioningProfileList"
    title = "Provisioning Profile List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowProvisioningInspection",
        ),
        "macOS": Support(introduced="11.0", user_enrollment=True, device_channel=True, user_channel=False),
        "tvOS": Support(introduced="10.2", access_rights="AllowProvisioningInspection"),
        "visionOS": Support(
            introduced="1.1",
            user_enrollment=True,
            access_rights="AllowProvisioningInspection",
        ),
        "watchOS": Support(introduced="10.0", access_rights="AllowProvisioningInspection"),
    }
    params = {
        "ManagedOnly": Param(
            "boolean",
            support={"iOS": Support(introduced="13.0"), "tvOS": Support(introduced="13.0")},
        ),
    }


class RefreshCellularPlans(Command):
    """Refresh Cellular Plans Command: Instructs the device to query for active cellular plan eSIM
    "profiles" at the designated carrier eSIM server URL.
    """

    # commands/device.esim.yaml
    request_type = "RefreshCellularPlans"
    title = "Refresh Cellular Plans Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="13.0",
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"eSIMServerURL": Param("string", required=True)}


class RemoveApplication(Command):
    """Remove Application Command: This command allows a server to remove a managed app."""

    # commands/application.remove.yaml
    request_type = "RemoveApplication"
    title = "Remove Application Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="11.0",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(introduced="10.0", access_rights="AllowAppInstallation"),
    }
    params = {"Identifier": Param("string", required=True)}


class RemoveMedia(Command):
    """Remove Media Command: This command allows an MDM server to remove managed media. This command
    returns Acknowledged even if the item is not found.
    """

    # commands/media.remove.yaml
    request_type = "RemoveMedia"
    title = "Remove Media Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="8.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "MediaType": Param("string", required=True, choices=("Book",)),
        "iTunesStoreID": Param("string"),
        "PersistentID": Param("string"),
    }


class RemoveProfile(Command):
    """Remove Profile Command: This command allows the server to remove a profile. This command requires
    the Profile Installation and Removal Right. It's supported in the user channel.
    """

    # commands/profile.remove.yaml
    request_type = "RemoveProfile"
    title = "Remove Profile Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="AllowInstallationRemoval",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowInstallationRemoval",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowInstallationRemoval"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowInstallationRemoval"),
        "watchOS": Support(introduced="10.0", access_rights="AllowInstallationRemoval"),
    }
    params = {"Identifier": Param("string", required=True)}


class RemoveProvisioningProfile(Command):
    """Remove Provisioning Profile Command: This command allows the server to remove a provisioning
    profile. This command requires the Provisioning Profile Installation and Removal right. On macOS,
    this command is for iOS and iPadOS style provisioning profiles only.
    """

    # commands/profile.provisioning.remove.yaml
    request_type = "RemoveProvisioningProfile"
    title = "Remove Provisioning Profile Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowProvisioningInstallationRemoval",
        ),
        "macOS": Support(introduced="11.0", user_enrollment=True, device_channel=True, user_channel=False),
        "tvOS": Support(introduced="10.2", access_rights="AllowProvisioningInstallationRemoval"),
        "visionOS": Support(
            introduced="1.1",
            user_enrollment=True,
            access_rights="AllowProvisioningInstallationRemoval",
        ),
        "watchOS": Support(introduced="10.0", access_rights="AllowProvisioningInstallationRemoval"),
    }
    params = {"UUID": Param("string", required=True)}


class RequestMirroring(Command):
    """Request Mirroring Command: This command prompts the user to share their screen using AirPlay
    mirroring.
    """

    # commands/mirroring.request.yaml
    request_type = "RequestMirroring"
    title = "Request Mirroring Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(introduced="10.10", user_enrollment=True, device_channel=True, user_channel=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "DestinationName": Param("string"),
        "DestinationDeviceID": Param("string"),
        "ScanTime": Param("integer"),
        "Password": Param("string"),
    }


class RequestUnlockToken(Command):
    """Request Unlock Token Command: This command requests an UnlockToken from the device."""

    # commands/passcode.unlocktoken.yaml
    request_type = "RequestUnlockToken"
    title = "Request Unlock Token Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            deprecated="6.1.6",
            supervised=True,
            user_enrollment=False,
            shared_ipad="forbidden",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class RestartDevice(Command):
    """Restart Device Command: This command requires the Device Lock access right. The device will restart
    immediately.
    """

    # commands/device.restart.yaml
    request_type = "RestartDevice"
    title = "Restart Device Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="10.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "tvOS": Support(introduced="10.2", supervised=True, access_rights="AllowPasscodeRemovalAndLock"),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "RebuildKernelCache": Param(
            "boolean",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.0"),
                "tvOS": Support(available=False),
            },
        ),
        "KextPaths": Param(
            "array",
            item=Param("string"),
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.0"),
                "tvOS": Support(available=False),
            },
        ),
        "NotifyUser": Param(
            "boolean",
            support={
                "iOS": Support(available=False),
                "macOS": Support(introduced="11.4"),
                "tvOS": Support(available=False),
            },
        ),
    }


class Restrictions(Command):
    """Restrictions Command: This command allows the server to determine what restrictions are being
    enforced on the device, and the total sum of all restrictions. This command requires the
    Restrictions Query access right.
    """

    # commands/device.restrictions.list.yaml
    request_type = "Restrictions"
    title = "Restrictions Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="AllowQueryRestrictions",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(introduced="9.0", access_rights="AllowQueryRestrictions"),
        "visionOS": Support(introduced="1.1", user_enrollment=False, access_rights="AllowQueryRestrictions"),
        "watchOS": Support(introduced="10.0", access_rights="AllowQueryRestrictions"),
    }
    params = {"ProfileRestrictions": Param("boolean")}


class RotateFileVaultKey(Command):
    """Rotate FileVault Key Command: This command allows for changing a device's FileVaultMaster password."""

    # commands/rotate.file.vault.key.yaml
    request_type = "RotateFileVaultKey"
    title = "Rotate FileVault Key Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.9",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "KeyType": Param("string", required=True, choices=("personal", "institutional")),
        "FileVaultUnlock": Param(
            "dictionary",
            required=True,
            subkeys={
                "Password": Param("string"),
                "PrivateKeyExport": Param("data", support={"macOS": Support(deprecated="10.15")}),
                "PrivateKeyExportPassword": Param("string", support={"macOS": Support(deprecated="10.15")}),
            },
        ),
        "NewCertificate": Param("data"),
        "ReplyEncryptionCertificate": Param("data"),
    }


class ScheduleOSUpdate(Command):
    """Schedule OS Update Command: This command allows the server to schedule an OS update."""

    # commands/system.update.schedule.yaml
    request_type = "ScheduleOSUpdate"
    title = "Schedule OS Update Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.0",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(
            introduced="10.11",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(
            introduced="12.0",
            supervised=True,
            device_channel=True,
            access_rights="AllowAppInstallation",
        ),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "Updates": Param(
            "array",
            required=True,
            item=Param(
                "dictionary",
                subkeys={
                    "ProductKey": Param("string"),
                    "ProductVersion": Param(
                        "string",
                        support={
                            "iOS": Support(introduced="11.3"),
                            "macOS": Support(introduced="12.0"),
                            "tvOS": Support(introduced="12.2"),
                        },
                    ),
                    "InstallAction": Param(
                        "string",
                        required=True,
                        choices=(
                            "Default",
                            "DownloadOnly",
                            "InstallASAP",
                            "NotifyOnly",
                            "InstallLater",
                            "InstallForceRestart",
                        ),
                    ),
                    "MaxUserDeferrals": Param(
                        "integer",
                        support={
                            "iOS": Support(available=False),
                            "macOS": Support(introduced="12.0"),
                            "tvOS": Support(available=False),
                        },
                    ),
                    "Priority": Param(
                        "string",
                        choices=("Low", "High"),
                        support={
                            "iOS": Support(available=False),
                            "macOS": Support(introduced="12.3"),
                            "tvOS": Support(available=False),
                        },
                    ),
                },
            ),
        ),
    }


class ScheduleOSUpdateScan(Command):
    """Schedule OS Update Scan Command: Requests that the device perform a background scan for OS updates."""

    # commands/system.update.scan.yaml
    request_type = "ScheduleOSUpdateScan"
    title = "Schedule OS Update Scan Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.11",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"Force": Param("boolean")}


class SecurityInfo(Command):
    """Security Info Command: This command queries the device for security-related information. Queries are
    available if the MDM host has the Security Query right.
    """

    # commands/information.security.yaml
    request_type = "SecurityInfo"
    title = "Security Info Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="4.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowQuerySecurity",
        ),
        "macOS": Support(
            introduced="10.7",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowQuerySecurity",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowQuerySecurity"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowQuerySecurity"),
        "watchOS": Support(introduced="10.0", access_rights="AllowQuerySecurity"),
    }


class SetAutoAdminPassword(Command):
    """Set Auto Admin Password Command: Allows changing the password of a local admin account that was
    created by Setup Assistant during DEP enrollment via the AccountConfiguration command.
    """

    # commands/set.auto.admin.password.yaml
    request_type = "SetAutoAdminPassword"
    title = "Set Auto Admin Password Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.11",
            requires_ade=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"GUID": Param("string", required=True), "passwordHash": Param("data", required=True)}


class SetFirmwarePassword(Command):
    """Set Firmware Password Command: Changes or clears the firmware password for the device."""

    # commands/passcode.firmware.set.yaml
    request_type = "SetFirmwarePassword"
    title = "Set Firmware Password Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {
        "CurrentPassword": Param("string"),
        "NewPassword": Param("string", required=True),
        "AllowOroms": Param("boolean"),
    }


class SetRecoveryLock(Command):
    """Set Recovery Lock Command: Sets or clears the recovery lock password (AppleSilicon devices only)"""

    # commands/passcode.recovery.set.yaml
    request_type = "SetRecoveryLock"
    title = "Set Recovery Lock Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="11.5",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"CurrentPassword": Param("string"), "NewPassword": Param("string", required=True)}


class Settings(Command):
    """Settings Command: This command allows the server to set settings on the device."""

    # commands/settings.yaml
    request_type = "Settings"
    title = "Settings Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="5.0",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=True,
            access_rights="AllowSettings",
        ),
        "macOS": Support(
            introduced="10.9",
            user_enrollment=True,
            device_channel=True,
            user_channel=True,
            access_rights="AllowSettings",
        ),
        "tvOS": Support(introduced="9.0", access_rights="AllowSettings"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowSettings"),
        "watchOS": Support(introduced="10.0", access_rights="AllowSettings"),
    }
    params = {
        "Settings": Param(
            "array",
            required=True,
            item=Param(
                "dictionary",
                variants={
                    "Wallpaper": {
                        "Image": Param("data", required=True),
                        "Where": Param("integer", required=True, choices=(1, 2, 3)),
                    },
                    "DataRoaming": {"Enabled": Param("boolean", required=True)},
                    "VoiceRoaming": {"Enabled": Param("boolean", required=True)},
                    "PersonalHotspot": {"Enabled": Param("boolean", required=True)},
                    "Bluetooth": {"Enabled": Param("boolean", required=True)},
                    "ApplicationConfiguration": {
                        "Identifier": Param("string", required=True),
                        "Configuration": Param("dictionary"),
                    },
                    "ApplicationAttributes": {
                        "Identifier": Param("string", required=True),
                        "Attributes": Param(
                            "dictionary",
                            subkeys={
                                "VPNUUID": Param("string", support={"tvOS": Support(available=False)}),
                                "ContentFilterUUID": Param(
                                    "string",
                                    support={
                                        "iOS": Support(introduced="16.0"),
                                        "tvOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "DNSProxyUUID": Param(
                                    "string",
                                    support={
                                        "iOS": Support(introduced="16.0"),
                                        "tvOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "RelayUUID": Param(
                                    "string",
                                    support={
                                        "iOS": Support(introduced="17.0"),
                                        "tvOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "AssociatedDomains": Param(
                                    "array",
                                    item=Param("string"),
                                    support={
                                        "iOS": Support(introduced="13.0"),
                                        "tvOS": Support(available=False),
                                    },
                                ),
                                "AssociatedDomainsEnableDirectDownloads": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(introduced="14.0"),
                                        "tvOS": Support(available=False),
                                    },
                                ),
                                "Removable": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(introduced="14.0"),
                                        "tvOS": Support(introduced="14.0"),
                                    },
                                ),
                                "TapToPayScreenLock": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(introduced="16.4"),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "CellularSliceUUID": Param(
                                    "string",
                                    support={
                                        "iOS": Support(introduced="17.0"),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "Hideable": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(introduced="18.1"),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "Lockable": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(introduced="18.1"),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                            },
                        ),
                    },
                    "DeviceName": {"DeviceName": Param("string", required=True)},
                    "HostName": {"HostName": Param("string", required=True)},
                    "OrganizationInfo": {
                        "OrganizationInfo": Param(
                            "dictionary",
                            subkeys={
                                "OrganizationName": Param("string", required=True),
                                "OrganizationShortName": Param(
                                    "string",
                                    support={
                                        "iOS": Support(introduced="13.0"),
                                        "macOS": Support(introduced="10.15"),
                                        "tvOS": Support(introduced="13.0"),
                                    },
                                ),
                                "OrganizationAddress": Param("string"),
                                "OrganizationPhone": Param("string"),
                                "OrganizationEmail": Param("string"),
                                "OrganizationMagic": Param("string"),
                            },
                        ),
                    },
                    "MDMOptions": {
                        "MDMOptions": Param(
                            "dictionary",
                            required=True,
                            subkeys={
                                "ActivationLockAllowedWhileSupervised": Param("boolean"),
                                "BootstrapTokenAllowed": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(available=False),
                                        "macOS": Support(
                                            introduced="10.15",
                                            deprecated="11.0",
                                            user_enrollment=False,
                                        ),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                                "PromptUserToAllowBootstrapTokenForAuthentication": Param(
                                    "boolean",
                                    support={
                                        "iOS": Support(available=False),
                                        "macOS": Support(introduced="11.0"),
                                        "tvOS": Support(available=False),
                                        "visionOS": Support(available=False),
                                        "watchOS": Support(available=False),
                                    },
                                ),
                            },
                        ),
                    },
                    "MaximumResidentUsers": {"MaximumResidentUsers": Param("integer", required=True)},
                    "SharedDeviceConfiguration": {
                        "QuotaSize": Param("integer"),
                        "ResidentUsers": Param("integer"),
                        "UserSessionTimeout": Param("integer", support={"iOS": Support(introduced="14.5")}),
                        "TemporarySessionTimeout": Param(
                            "integer",
                            support={"iOS": Support(introduced="14.5")},
                        ),
                        "TemporarySessionOnly": Param("boolean", support={"iOS": Support(introduced="14.5")}),
                        "ManagedAppleIDDefaultDomains": Param(
                            "array",
                            item=Param("string"),
                            support={"iOS": Support(introduced="16.0")},
                        ),
                        "OnlineAuthenticationGracePeriod": Param(
                            "integer",
                            support={"iOS": Support(introduced="16.0")},
                        ),
                        "SkipLanguageAndLocaleSetupForNewUsers": Param(
                            "boolean",
                            support={"iOS": Support(introduced="16.2")},
                        ),
                        "AwaitUserConfiguration": Param(
                            "dictionary",
                            subkeys={"Enabled": Param("boolean", required=True)},
                            support={"iOS": Support(introduced="17.0")},
                        ),
                        "PasscodePolicy": Param(
                            "dictionary",
                            subkeys={
                                "PasscodeLockGracePeriod": Param(
                                    "integer",
                                    choices=(0, 60, 300, 900, 3600, 14400),
                                ),
                                "AutoLockTime": Param("integer"),
                            },
                            support={"iOS": Support(introduced="17.0")},
                        ),
                    },
                    "DiagnosticSubmission": {"Enabled": Param("boolean", required=True)},
                    "AppAnalytics": {"Enabled": Param("boolean", required=True)},
                    "PasscodeLockGracePeriod": {
                        "PasscodeLockGracePeriod": Param(
                            "integer",
                            required=True,
                            choices=(0, 60, 300, 900, 3600, 14400),
                        ),
                    },
                    "TimeZone": {"TimeZone": Param("string", required=True)},
                    "SoftwareUpdateSettings": {
                        "RecommendationCadence": Param("integer", required=True, choices=(0, 1, 2)),
                    },
                    "AccessibilitySettings": {
                        "BoldTextEnabled": Param("boolean"),
                        "IncreaseContrastEnabled": Param(
                            "boolean",
                            support={"watchOS": Support(available=False)},
                        ),
                        "ReduceMotionEnabled": Param("boolean"),
                        "ReduceTransparencyEnabled": Param("boolean"),
                        "TextSize": Param("integer", choices=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)),
                        "TouchAccommodationsEnabled": Param("boolean"),
                        "VoiceOverEnabled": Param("boolean"),
                        "ZoomEnabled": Param("boolean"),
                        "GrayscaleEnabled": Param(
                            "boolean",
                            support={"iOS": Support(available=False), "watchOS": Support(available=False)},
                        ),
                    },
                },
                variant_support={
                    "Wallpaper": {
                        "iOS": Support(
                            introduced="8.0",
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "DataRoaming": {
                        "iOS": Support(
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "VoiceRoaming": {
                        "iOS": Support(
                            deprecated="16.0",
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "PersonalHotspot": {
                        "iOS": Support(
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                            access_rights="AllowQueryNetworkInformation",
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "Bluetooth": {
                        "iOS": Support(
                            introduced="11.3",
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(introduced="10.13.4", user_enrollment=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "ApplicationConfiguration": {
                        "iOS": Support(
                            introduced="7.0",
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                            access_rights="AllowAppInstallation",
                        ),
                        "macOS": Support(
                            introduced="10.15",
                            user_channel=False,
                            access_rights="AllowAppInstallation",
                        ),
                        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
                        "visionOS": Support(access_rights="AllowAppInstallation"),
                        "watchOS": Support(access_rights="AllowAppInstallation"),
                    },
                    "ApplicationAttributes": {
                        "iOS": Support(
                            introduced="7.0",
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                            access_rights="AllowAppInstallation",
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
                        "visionOS": Support(access_rights="AllowAppInstallation"),
                        "watchOS": Support(access_rights="AllowAppInstallation"),
                    },
                    "DeviceName": {
                        "iOS": Support(
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(introduced="10.10", user_enrollment=False),
                        "visionOS": Support(introduced="2.0", supervised=True, user_enrollment=False),
                        "watchOS": Support(available=False),
                    },
                    "HostName": {
                        "iOS": Support(available=False),
                        "macOS": Support(introduced="10.11", user_enrollment=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "OrganizationInfo": {
                        "iOS": Support(
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(introduced="10.9"),
                    },
                    "MDMOptions": {
                        "iOS": Support(
                            introduced="7.0",
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(introduced="10.15", user_enrollment=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(introduced="2.0"),
                        "watchOS": Support(available=False),
                    },
                    "MaximumResidentUsers": {
                        "iOS": Support(
                            introduced="9.3",
                            deprecated="13.4",
                            user_enrollment=False,
                            shared_ipad="required",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "SharedDeviceConfiguration": {
                        "iOS": Support(
                            introduced="13.4",
                            user_enrollment=False,
                            shared_ipad="required",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "DiagnosticSubmission": {
                        "iOS": Support(
                            introduced="9.3",
                            user_enrollment=False,
                            shared_ipad="required",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "AppAnalytics": {
                        "iOS": Support(
                            introduced="9.3.2",
                            user_enrollment=False,
                            shared_ipad="required",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "PasscodeLockGracePeriod": {
                        "iOS": Support(
                            introduced="9.3.2",
                            deprecated="17.0",
                            user_enrollment=False,
                            shared_ipad="required",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "TimeZone": {
                        "iOS": Support(
                            introduced="14.0",
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(introduced="14.0", supervised=True),
                        "visionOS": Support(introduced="2.0", supervised=True, user_enrollment=False),
                        "watchOS": Support(available=False),
                    },
                    "SoftwareUpdateSettings": {
                        "iOS": Support(
                            introduced="14.5",
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=True,
                            shared_ipad_user_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(available=False),
                    },
                    "AccessibilitySettings": {
                        "iOS": Support(
                            introduced="16.0",
                            supervised=True,
                            user_enrollment=False,
                            shared_ipad="allowed",
                            shared_ipad_device_channel=False,
                        ),
                        "macOS": Support(available=False),
                        "tvOS": Support(available=False),
                        "visionOS": Support(available=False),
                        "watchOS": Support(supervised=True),
                    },
                },
            ),
        ),
    }


class ShutDownDevice(Command):
    """Shut Down Device Command: This command requires the Device Lock access right. The device will shut
    down immediately.
    """

    # commands/device.shutdown.yaml
    request_type = "ShutDownDevice"
    title = "Shut Down Device Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="10.3",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="AllowPasscodeRemovalAndLock",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class StopMirroring(Command):
    """Stop Mirroring Command: This command stops AirPlay mirroring."""

    # commands/mirroring.stop.yaml
    request_type = "StopMirroring"
    title = "Stop Mirroring Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="7.0",
            supervised=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(introduced="10.10", user_enrollment=False, device_channel=True, user_channel=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class UnlockUserAccount(Command):
    """Unlock User Account Command: This command allows the server to unlock a local user account."""

    # commands/user.unlock.yaml
    request_type = "UnlockUserAccount"
    title = "Unlock User Account Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="10.13",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"UserName": Param("string", required=True)}


class UserConfigured(Command):
    """User Configured Command: Informs the device that it can continue past Setup Assistant and finish
    login. Only works on Shared iPads that have the AwaitUserConfiguration feature enabled.
    """

    # commands/user.configured.yaml
    request_type = "UserConfigured"
    title = "User Configured Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="17.0",
            supervised=True,
            requires_ade=True,
            user_enrollment=False,
            shared_ipad="allowed",
            shared_ipad_device_channel=False,
            shared_ipad_user_channel=True,
        ),
        "macOS": Support(available=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class UserList(Command):
    """User List Command: This command allows the server to query for a list of users that have an active
    account on the device.
    """

    # commands/user.list.yaml
    request_type = "UserList"
    title = "User List Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.3",
            user_enrollment=False,
            shared_ipad="required",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
        ),
        "macOS": Support(
            introduced="10.13",
            supervised=True,
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }


class ValidateApplications(Command):
    """Validate Applications Command: This commands allows the server to force validation of the free
    developer and universal provisioning profiles associated with an enterprise app.
    """

    # commands/application.validate.yaml
    request_type = "ValidateApplications"
    title = "Validate Applications Command"
    from_schema = True
    support = {
        "iOS": Support(
            introduced="9.2",
            user_enrollment=True,
            shared_ipad="allowed",
            shared_ipad_device_channel=True,
            shared_ipad_user_channel=False,
            access_rights="AllowAppInstallation",
        ),
        "macOS": Support(available=False),
        "tvOS": Support(introduced="10.2", access_rights="AllowAppInstallation"),
        "visionOS": Support(introduced="1.1", user_enrollment=True, access_rights="AllowAppInstallation"),
        "watchOS": Support(available=False),
    }
    params = {"Identifiers": Param("array", item=Param("string"))}


class VerifyFirmwarePassword(Command):
    """Verify Firmware Password Command: Verifies the device's firmware password."""

    # commands/passcode.firmware.verify.yaml
    request_type = "VerifyFirmwarePassword"
    title = "Verify Firmware Password Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(introduced="10.13", user_enrollment=False, device_channel=True, user_channel=False),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"Password": Param("string", required=True)}


class VerifyRecoveryLock(Command):
    """Verify Recovery Lock Command: Verifies the device's recovery lock password. (AppleSilicon devices
    only)
    """

    # commands/passcode.recovery.verify.yaml
    request_type = "VerifyRecoveryLock"
    title = "Verify Recovery Lock Command"
    from_schema = True
    support = {
        "iOS": Support(available=False),
        "macOS": Support(
            introduced="11.5",
            user_enrollment=False,
            device_channel=True,
            user_channel=False,
            access_rights="DeviceLockAndRemovePasscode",
        ),
        "tvOS": Support(available=False),
        "visionOS": Support(available=False),
        "watchOS": Support(available=False),
    }
    params = {"Password": Param("string", required=True)}
