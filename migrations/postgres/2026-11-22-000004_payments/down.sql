DROP TABLE fee_rates;
DROP TABLE sandbox_bank_payments;
DROP TABLE payments;
