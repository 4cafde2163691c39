//! A station speaking the native JSON contract (`docs/mqtt.md`).

use std::{sync::Arc, time::Duration};

use rumqttc::{AsyncClient, QoS};
use station_codecs::native::{
    Command, DEFAULT_PREFIX, Heartbeat, SlotReport, SlotState, StationEvent, StatusMessage, Topics,
};

use crate::Shared;

fn topics() -> Topics {
    Topics::default()
}

/// The topic whose last level is `channel`, before the mountpoint.
pub(crate) fn topic(shared: &Shared, channel: &str) -> String {
    format!("{DEFAULT_PREFIX}/stations/{}/{channel}", shared.device_id)
}

pub(crate) fn last_will(shared: &Shared) -> anyhow::Result<(String, Vec<u8>)> {
    let will = serde_json::to_vec(&StatusMessage { online: false, firmware: None, slots: None })?;
    Ok((shared.topic(&topics().status(&shared.device_id)), will))
}

fn status(shared: &Shared) -> StatusMessage {
    let slots = shared.slots();
    StatusMessage {
        online: true,
        firmware: Some(shared.config.firmware.clone()),
        slots: Some(
            slots
                .iter()
                .map(|s| SlotReport {
                    index: s.index,
                    state: if s.bank.is_some() { SlotState::Occupied } else { SlotState::Empty },
                    power_bank: s.bank.as_ref().map(|b| b.0.clone()),
                    battery: s.bank.as_ref().map(|b| b.1),
                })
                .collect(),
        ),
    }
}

pub(crate) fn on_connect(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    let id = &shared.device_id;
    client.try_subscribe(shared.topic(&topics().commands(id)), QoS::AtLeastOnce)?;
    let status = serde_json::to_vec(&status(shared))?;
    client.try_publish(shared.topic(&topics().status(id)), QoS::AtLeastOnce, true, status)?;
    Ok(())
}

/// The full status again, retained as at connection.
pub(crate) async fn publish_status(shared: &Shared, client: &AsyncClient) -> anyhow::Result<()> {
    let status = serde_json::to_vec(&status(shared))?;
    client.publish(shared.topic(&topics().status(&shared.device_id)), QoS::AtLeastOnce, true, status).await?;
    Ok(())
}

pub(crate) async fn publish_event(shared: &Shared, client: &AsyncClient, event: &StationEvent) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(event)?;
    client.publish(shared.topic(&topics().events(&shared.device_id)), QoS::AtLeastOnce, false, payload).await?;
    Ok(())
}

pub(crate) async fn heartbeat(shared: &Shared, client: &AsyncClient, uptime: Duration) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(&Heartbeat { uptime_secs: Some(uptime.as_secs()) })?;
    client.publish(shared.topic(&topics().heartbeat(&shared.device_id)), QoS::AtMostOnce, false, payload).await?;
    Ok(())
}

/// Takes the bank out of `slot` unless the dice say the motor jams.
fn try_eject(shared: &Shared, slot: u16) -> Result<String, String> {
    if shared.roll_failure() {
        return Err("motor_jam".into());
    }
    let mut slots = shared.slots();
    let s = slots.iter_mut().find(|s| s.index == slot).ok_or_else(|| "no_such_slot".to_string())?;
    s.bank.take().map(|b| b.0).ok_or_else(|| "slot_empty".to_string())
}

/// Answers an eject after the configured delay, once per request id.
pub(crate) fn on_command(shared: &Arc<Shared>, client: &AsyncClient, payload: &[u8]) {
    let Ok(Command::Eject { request_id, slot }) = serde_json::from_slice::<Command>(payload) else {
        tracing::warn!(station = %shared.device_id, "sim ignored an unreadable command");
        return;
    };
    let shared = shared.clone();
    let client = client.clone();
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.eject_delay).await;
        let previous = shared.answered.lock().unwrap_or_else(|p| p.into_inner()).get(&request_id).cloned();
        let event = match previous {
            Some(answer) => answer,
            None => {
                let event = match try_eject(&shared, slot) {
                    Ok(power_bank) => StationEvent::Ejected { request_id: request_id.clone(), slot, power_bank },
                    Err(reason) => StationEvent::EjectFailed { request_id: request_id.clone(), slot, reason },
                };
                shared.answered.lock().unwrap_or_else(|p| p.into_inner()).insert(request_id, event.clone());
                event
            }
        };
        if let Err(e) = publish_event(&shared, &client, &event).await {
            tracing::warn!(station = %shared.device_id, error = %e, "sim answer not sent");
        }
    });
}
