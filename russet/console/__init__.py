"""The web console: server-rendered pages for IT admins and privacy officers under /console.

Pages call `russet.operations` and the stores exactly as the REST API does; nothing here decides
anything the API would decide differently.
"""
