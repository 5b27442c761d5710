"""provisiond: a provisioning server for SIP desk phones.

Phones fetch their configuration by MAC over TFTP or HTTP(S); administrators manage users,
devices, primary devices and licences through a REST API, a CLI and a web console.
"""

__version__ = "0.1.0"
