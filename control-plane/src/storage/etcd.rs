//! STUB in main until the storage branch merges.
pub struct EtcdStore;
impl EtcdStore {
    pub async fn connect(_endpoints: &[String]) -> Result<EtcdStore, super::StoreError> { unimplemented!() }
}
