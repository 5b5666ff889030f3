//! HTTP API types and the client used by kg, kgctl and plug-ins.
