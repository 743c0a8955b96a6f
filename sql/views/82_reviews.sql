/*
 * Analytics of reviews: volume and average rating by month. Counts only: no text, no people.
 */

create view analytics.reviews_monthly as
select date_trunc('month', r.created_at at time zone 'UTC')::date as month,
       c.slug as category,
       count(*) as reviews,
       count(*) filter (where r.hidden_at is null) as visible_reviews,
       round(avg(r.rating) filter (where r.hidden_at is null), 2) as average_rating,
       count(*) filter (where r.response is not null) as responded,
       count(*) filter (where r.hidden_at is not null) as hidden
from app.reviews r
join app.products p on p.id = r.product_id
join app.categories c on c.id = p.category_id
group by 1, 2;
comment on view analytics.reviews_monthly is 'Reviews per UTC month and listing category: how many, the average visible rating, how many the hosts answered and admins hid. No review text and no identities.';
comment on column analytics.reviews_monthly.month is 'First day of the month the reviews were written.';
comment on column analytics.reviews_monthly.category is 'Category slug of the reviewed listings.';
comment on column analytics.reviews_monthly.reviews is 'Reviews written, hidden ones included.';
comment on column analytics.reviews_monthly.visible_reviews is 'Of those, not hidden.';
comment on column analytics.reviews_monthly.average_rating is 'Average rating (1-5) of the visible ones, 2 decimals; null when none.';
comment on column analytics.reviews_monthly.responded is 'How many the host responded to.';
comment on column analytics.reviews_monthly.hidden is 'How many admins hid.';
