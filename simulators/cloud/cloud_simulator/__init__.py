"""A stand-in for the cloud (Huawei Cloud's REST API subset Mercato's SDK calls use).

Run it with ``python -m cloud_simulator``; see ``simulators/cloud/README.md``.
Mercato's services never import this package: they talk to it over HTTP through the
cloud's own SDK, exactly as they talk to the real cloud.
"""
