DROP TABLE public_lookup_counts;
