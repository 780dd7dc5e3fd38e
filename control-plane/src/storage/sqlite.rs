//! STUB in main until the storage branch merges.
pub struct SqliteStore;
impl SqliteStore {
    pub fn open(_path: &std::path::Path) -> Result<SqliteStore, super::StoreError> { unimplemented!() }
}
