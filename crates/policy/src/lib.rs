//! The one pure authorization function (L0).
