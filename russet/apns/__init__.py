"""APNs for MDM: the push certificate's lifecycle (key, CSR, vendor signing, import, expiry).

Talking to APNs itself goes through `russet.apple`, the one gateway to Apple; this package only
prepares and keeps the credentials that gateway presents.
"""
