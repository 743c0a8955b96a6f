/*
 * 0032 ledger accounts: where money is while a guest disputes a charge, and what a host owes.
 *
 * Why: a refund after the host was paid out, and a dispute the platform loses, took money
 * from the platform's cash with nothing saying who would make it good. Two accounts say it:
 * host_receivable (a host's share of money that went back to a guest after their payout was
 * computed: owed by the host, withheld from their next payout) and dispute (money the card
 * network or PayPal holds while a guest disputes a payment).
 *
 * A migration of its own: a value added to an enum can be used only once its transaction has
 * committed, and 0033's index and the functions use these two.
 */

alter type app.ledger_account add value 'host_receivable';
alter type app.ledger_account add value 'dispute';
comment on type app.ledger_account is
  'Where money is, for one booking: guest (paid in, negative), platform_cash (held by the platform at its provider), fx (currency conversion), host_payable (owed to the host), platform_fee (the platform''s revenue), host (paid out), host_receivable (owed by the host: their share of money that went back to the guest after their payout was computed; negative while owed, settled by withholding it from a later payout), dispute (held by the card network or PayPal while a guest disputes the payment).';
