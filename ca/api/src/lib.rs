//! The CA's wire types: requests, responses and errors shared by the CA, the proxy and the client.
#![forbid(unsafe_code)]
