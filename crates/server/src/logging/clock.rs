//! Wall-clock formatting for log lines, in UTC.
//!
//! UTC and not local time: finding the local offset portably needs libc's
//! `localtime_r`, which is not thread-safe against `setenv` and would need
//! `unsafe` here. Gunicorn prints local time with its offset; we print
//! `+0000`, which log shippers handle the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Civil {
    pub fn from_system(t: SystemTime) -> Civil {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            millis: d.subsec_millis(),
        }
    }

    /// `2026-11-24 08:00:00 +0000`, the error log's stamp.
    pub fn error_log(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} +0000",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `[24/Nov/2026:08:00:00 +0000]`, the access log's `%(t)s`.
    pub fn access_log(&self) -> String {
        format!(
            "[{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000]",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }

    /// `2026-11-24T08:00:00.123Z`, for JSON lines.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_507_200_250); // 2026-11-24 08:00:00.250
        let c = Civil::from_system(t);
        assert_eq!(c.error_log(), "2026-11-24 08:00:00 +0000");
        assert_eq!(c.access_log(), "[24/Nov/2026:08:00:00 +0000]");
        assert_eq!(c.rfc3339(), "2026-11-24T08:00:00.250Z");
        let leap = Civil::from_system(UNIX_EPOCH + Duration::from_secs(951_782_400)); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
        assert_eq!(
            Civil::from_system(UNIX_EPOCH).error_log(),
            "1970-01-01 00:00:00 +0000"
        );
    }
}
