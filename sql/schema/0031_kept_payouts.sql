/*
 * 0031 kept payouts: money kept on a cancellation is paid to the host at the would-be check-out.
 *
 * Why: when a guest canceled under a policy that keeps part of the price, the host's share was
 * paid out at once. A cancellation is where disputes start (the guest's bank may still reverse
 * the charge), and a stay's own payout waits for its check-out; the kept money now waits for the
 * same moment (app.run_booking_jobs opens it), so a dispute raised meanwhile finds it unpaid.
 *
 * Guarantees after this file: the booking job finds canceled bookings whose check-out has just
 * passed through this partial index, without reading every booking.
 */

create index bookings_canceled_end_idx on app.bookings (end_date) where status = 'canceled';
