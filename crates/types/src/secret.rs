/// What every secret prints as, in `get`, `plan`, logs and Terraform. Input
/// carrying this value keeps the stored secret.
pub const REDACTED: &str = "<redacted>";
