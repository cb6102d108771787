// Amounts as money in the API's answers: every transaction shown gets `amount`, its amount_minor in
// major units with the ISO 4217 exponent of its currency ("25.00 EUR", "1500 JPY"; an unknown code
// gets 2 decimals and says so). amount_minor stays, the raw integer.
import { formatMoney, type Transaction } from '@tillwatch/schemas';

export type TransactionView = Transaction & { amount: string };

export const withMoney = (t: Transaction): TransactionView => ({ ...t, amount: formatMoney(t.amount_minor, t.currency) });
