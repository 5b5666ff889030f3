//! The proxy service: public HTTPS entry forwarding to auth over mTLS.
