//! A request wrapper that asserts an appservice identity (`?user_id=…&device_id=…`).
//!
//! matrix-sdk 0.18 has no way to masquerade as an appservice user, so every outgoing request is
//! wrapped in [`AsUser`], which delegates to the wrapped ruma request and then lets ruma's
//! [`AppserviceUserIdentity`] add the query parameters.

use bytes::BufMut;
use ruma::{
    api::{
        auth_scheme::AuthScheme, error::IntoHttpError, path_builder::PathBuilder, AppserviceUserIdentity,
        Metadata, OutgoingRequest,
    },
    OwnedDeviceId, OwnedUserId,
};

/// `request`, sent as `user_id` from `device_id`.
#[derive(Clone, Debug)]
pub struct AsUser<R> {
    pub request: R,
    pub user_id: OwnedUserId,
    pub device_id: Option<OwnedDeviceId>,
}

impl<R: Metadata> Metadata for AsUser<R> {
    const METHOD: http::Method = R::METHOD;
    const RATE_LIMITED: bool = R::RATE_LIMITED;
    type Authentication = R::Authentication;
    type PathBuilder = R::PathBuilder;
    const PATH_BUILDER: Self::PathBuilder = R::PATH_BUILDER;
}

impl<R: OutgoingRequest> OutgoingRequest for AsUser<R> {
    type EndpointError = R::EndpointError;
    type IncomingResponse = R::IncomingResponse;

    fn try_into_http_request<T: Default + BufMut + AsRef<[u8]>>(
        self,
        base_url: &str,
        authentication_input: <Self::Authentication as AuthScheme>::Input<'_>,
        path_builder_input: <Self::PathBuilder as PathBuilder>::Input<'_>,
    ) -> Result<http::Request<T>, IntoHttpError> {
        let mut request =
            self.request.try_into_http_request(base_url, authentication_input, path_builder_input)?;
        let mut identity = AppserviceUserIdentity::new(&self.user_id);
        identity.device_id = self.device_id.as_deref();
        identity.maybe_add_to_uri(request.uri_mut())?;
        Ok(request)
    }
}
