//! OpenAPI schemas for types that serialise as strings but are not strings in Rust.

/// Implements `utoipa::ToSchema` as a string with a description and an example.
macro_rules! string_schema {
    ($ty:ty, $description:literal, $example:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(
                    utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .description(Some($description))
                        .examples([$example])
                        .build(),
                ))
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

pub(crate) use string_schema;
