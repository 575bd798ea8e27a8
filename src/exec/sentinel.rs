//! Sentinel configuration steps: MONITOR (with its settings), SET, REMOVE.

use super::*;

impl Context {
    pub(super) async fn ensure_monitored(
        &self,
        sentinel: &InstanceKey,
        group: &str,
        master: &InstanceKey,
    ) -> Result<(), StepError> {
        let sc = self
            .topology
            .sentinel
            .as_ref()
            .ok_or_else(|| StepError::Other("no sentinel section in the topology".into()))?;
        let m = &self.target(master).managed;
        let mut c = self.conn(sentinel).await?;
        match c
            .cmd(&[
                "SENTINEL".to_string(),
                "MONITOR".into(),
                group.to_string(),
                m.address.to_string(),
                m.port.to_string(),
                sc.quorum.to_string(),
            ])
            .await
        {
            Ok(_) => {}
            // Done by an earlier, interrupted attempt.
            Err(ClientError::Server { message, .. })
                if message.contains("Duplicated master name") => {}
            Err(e) => return Err(e.into()),
        }
        let mut args: Vec<String> = vec![
            "SENTINEL".into(),
            "SET".into(),
            group.to_string(),
            "down-after-milliseconds".into(),
            sc.down_after_ms.to_string(),
            "failover-timeout".into(),
            sc.failover_timeout_ms.to_string(),
            "parallel-syncs".into(),
            sc.parallel_syncs.to_string(),
        ];
        args.extend(crate::render::acl::sentinel_auth(self.password.as_ref()));
        c.cmd(&args).await?;
        Ok(())
    }

    pub(super) async fn ensure_sentinel_set(
        &self,
        sentinel: &InstanceKey,
        group: &str,
        params: &[(String, String)],
    ) -> Result<(), StepError> {
        let mut c = self.conn(sentinel).await?;
        let mut args: Vec<String> = vec!["SENTINEL".into(), "SET".into(), group.to_string()];
        for (k, v) in params {
            args.push(k.clone());
            args.push(v.clone());
        }
        c.cmd(&args).await?;
        Ok(())
    }

    pub(super) async fn ensure_sentinel_removed(
        &self,
        sentinel: &InstanceKey,
        group: &str,
    ) -> Result<(), StepError> {
        let mut c = self.conn(sentinel).await?;
        match c.cmd(&["SENTINEL", "REMOVE", group]).await {
            Ok(_) => Ok(()),
            Err(ClientError::Server { message, .. }) if message.contains("No such master") => {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
