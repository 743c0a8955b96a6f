/*
 * Session settings of the login roles, re-applied by every migrate that re-applies the code.
 *
 * The API's sessions run many short statements side by side on few cores: a parallel
 * plan there costs more in worker start-up and contention than it saves (measured by
 * make bench on 2 cores), so the authenticator's sessions plan serially. DBAs and
 * analysts keep the server's defaults.
 */

alter role authenticator set max_parallel_workers_per_gather = 0;
