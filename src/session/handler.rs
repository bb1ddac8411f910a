//! The built-in handlers: echo and discard, written on the owner's [`Sessions`] API.

use super::slot::SlotId;
use super::stream::Sessions;
use super::types::SessionError;
use crate::wire::nbss;

impl Sessions<'_, '_> {
    /// Reads and drops everything that has arrived on `id`.
    pub fn discard(&mut self, id: SlotId, scratch: &mut [u8]) -> Result<(), SessionError> {
        while self.incoming(id)?.is_some() {
            if self.read(id, scratch)? == 0 {
                // A zero-length message was taken whole by `incoming`; a longer one waits
                // for more bytes.
                let (index, _) = self.slot(id)?;
                if self.service.ledger[index].rx_remaining.is_some() {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Echoes what has arrived on `id`: each incoming message goes back as one message of the
    /// same length, as fast as both buffers allow.
    pub fn echo(&mut self, id: SlotId, scratch: &mut [u8]) -> Result<(), SessionError> {
        loop {
            let (index, _) = self.slot(id)?;
            if self.tx_remaining(index) == 0 {
                // Between messages: start the echo of the next one, if its header came and
                // ours fits.
                if self.send_room(id)? < nbss::HEADER_LEN {
                    return Ok(());
                }
                let Some(incoming) = self.incoming(id)? else {
                    return Ok(());
                };
                self.begin_message(id, incoming.length)?;
                if incoming.length == 0 {
                    continue;
                }
            }
            let remaining = self.tx_remaining(index) as usize;
            let n = remaining.min(self.send_room(id)?).min(scratch.len());
            if n == 0 {
                return Ok(());
            }
            let got = self.read(id, &mut scratch[..n])?;
            if got == 0 {
                return Ok(());
            }
            self.write(id, &scratch[..got])?;
        }
    }

    /// Body bytes of the outgoing message of slot `index` still to write (an entry
    /// [`Sessions::slot`] found: the lookup cannot miss).
    fn tx_remaining(&self, index: usize) -> u32 {
        self.service.ledger.get(index).map_or(0, |s| s.tx_remaining)
    }
}
