//! Contact holds ([`collect_engine::contact`]): one item per customer and
//! address in the customer's partition (`HOLD#<address>`), written on a
//! condition so a replayed bounce or complaint holds once, and ended by a
//! write conditional on the document read (a hold another writer ended or
//! replaced is left alone). The customer's book carries the open ones.

use super::Dynamo;
use super::codec::{decode, encode, item, s};
use crate::error::AwsError;
use crate::keys::{self, PK, STATUS};
use collect_engine::contact::{ContactHold, HoldEnd, address_key};

/// The `status` attribute of an open hold (an ended one has `ended`).
const OPEN: &str = "open";
const ENDED: &str = "ended";

impl Dynamo {
    fn hold_item(&self, hold: &ContactHold) -> Result<super::Item, AwsError> {
        let mut it = item(
            keys::customer_pk(&hold.customer_id),
            keys::contact_hold_sk(&address_key(&hold.address)),
            "contact_hold",
            encode(hold)?,
        );
        let status = if hold.ended.is_none() { OPEN } else { ENDED };
        it.insert(STATUS.to_string(), s(status));
        // Open: an address to fix, in the desk's index of open work.
        self.index_hold(&mut it, hold)?;
        Ok(it)
    }

    /// Writes a hold unless an open one of the same customer and address is
    /// stored; returns whether it was written.
    pub async fn put_contact_hold(&self, hold: &ContactHold) -> Result<bool, AwsError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.hold_item(hold)?))
            .condition_expression("attribute_not_exists(#pk) OR #status <> :open")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#status", STATUS)
            .expression_attribute_values(":open", s(OPEN));
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(super::conditional_failed) => Ok(false),
            Err(e) => Err(AwsError::sdk(crate::error::Service::DynamoDb, "PutItem", e)),
        }
    }

    /// Ends the open hold of a customer's address; `Ok(false)` when there
    /// is none open (or another writer changed it first).
    pub async fn end_contact_hold(
        &self,
        customer_id: &str,
        address: &str,
        end: &HoldEnd,
    ) -> Result<bool, AwsError> {
        let pk = keys::customer_pk(customer_id);
        let sk = keys::contact_hold_sk(&address_key(address));
        let Some((mut hold, doc, _)) = self.get_doc::<ContactHold>(&pk, &sk).await? else {
            return Ok(false);
        };
        if hold.ended.is_some() {
            return Ok(false);
        }
        hold.ended = Some(end.clone());
        self.put_if_doc(self.hold_item(&hold)?, Some(&doc), None)
            .await
    }

    /// A customer's holds, open and ended (the latest per address).
    pub async fn contact_holds(&self, customer_id: &str) -> Result<Vec<ContactHold>, AwsError> {
        self.query_prefix(&keys::customer_pk(customer_id), keys::HOLD_PREFIX)
            .await?
            .iter()
            .map(decode)
            .collect()
    }
}
