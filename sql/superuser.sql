/*
 * What only a superuser may do, once per database, before the first migrate.
 *
 * Why: PostGIS (0028) is not a trusted extension, so the owner who migrates cannot create it
 * unless it is a superuser or a managed service's admin role (RDS rds_superuser, Cloud SQL
 * cloudsqlsuperuser, Azure azure_pg_admin with postgis allow-listed): those migrate without
 * this file. Everywhere else a superuser runs it in the project's database:
 *
 *   psql -d nexus -f sql/superuser.sql
 *
 * scripts/pg-local runs it on every start, the tests and the bench on the databases they
 * make. It makes schema `extensions` for the database's owner when missing (0001 then finds
 * it) and PostGIS in it. Running it again changes nothing.
 */

do $$
begin
  if to_regnamespace('extensions') is null then
    execute format('create schema extensions authorization %I',
                   (select pg_get_userbyid(d.datdba) from pg_database d where d.datname = current_database()));
  end if;
end
$$;
create extension if not exists postgis with schema extensions;
