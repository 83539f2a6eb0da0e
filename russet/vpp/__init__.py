"""Apps and Books (VPP): locations, assets, users, licences and app installs (§f of the protocol notes).

Every request to Apple goes through the gateway (`russet.apple.gateway`); Apple's notifications
arrive on `POST /vpp/notify/{location}` (`russet.vpp.notify`).
"""
