# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_redisctl_global_optspecs
    string join \n o/output= state-dir= timeout= supervisor= host= v/verbose h/help V/version
end

function __fish_redisctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_redisctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_redisctl_using_subcommand
    set -l cmd (__fish_redisctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c redisctl -n "__fish_redisctl_needs_command" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_needs_command" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_needs_command" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_needs_command" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_needs_command" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_needs_command" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_needs_command" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_needs_command" -s V -l version -d 'Print version'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "validate" -d 'Check a topology file; report every problem with file:line:column'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "render" -d 'Write (or print) the files redisctl would generate for each instance'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "plan" -d 'Show the numbered steps `apply` would execute. Changes nothing'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "apply" -d 'Converge the live deployment to the topology'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "drain" -d 'Move every master off HOST (safe manual failovers; slot moves only with --move-slots), then stop HOST\'s instances and mark it drained. Run it on HOST'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "undrain" -d 'Start HOST\'s instances again, wait until its replicas have resynchronised, restore the roles recorded by `drain` (safe manual failovers) and clear the mark. Run it on HOST'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "restart" -d 'Restart this host\'s instances one at a time (replicas first; a master only after a safe failover to a replica, and back; Sentinels last), waiting for each to catch up'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "status" -d 'Per-node state: role, shard, slots, links, replication, keys, memory, persistence. Exits 2 when no declared node answers (not started, wrong password, unreachable)'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "check" -d 'Verify the live deployment: membership and slot maps agree everywhere, full coverage, no open slots, replicas as declared, master and replica on different hosts, no drift. Exits 1 when anything is wrong'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "failover" -d 'Make a replica the master of its shard or group (CLUSTER FAILOVER / SENTINEL FAILOVER) and wait until every node agrees. Refuses a lagging replica unless --force'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "agent" -d 'Run this host\'s control loop: every `agent.interval`, observe, plan and execute the healing part of this host\'s plan (as `apply` would); report the rest. Runs until stopped (the unit redisctl-agent@NAME)'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "pause" -d 'Pause the agent on this host (persisted): it observes and reports, and changes nothing'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "resume" -d 'Resume the agent on this host after `pause`'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "destroy" -d 'Stop every instance and delete its state and data. Needs --yes'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "keyslot" -d 'Hash slot of each key (CRC16 with {hash tags}, as CLUSTER KEYSLOT)'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "schema" -d 'Print the JSON Schema of the topology format'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "unit-start" -d 'The start hook of a data node\'s systemd unit (ExecStartPre): decide how the instance at PORT on --host may come back (crash-safe restarts) and write its start options'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "man" -d 'Write the man pages into DIR (packaging)'
complete -c redisctl -n "__fish_redisctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand validate" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -l out -d 'Write the state layout under DIR instead of printing (secrets are redacted)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand render" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -l exit-code -d 'Exit 1 when there is something to do'
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand plan" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l slot-migration -d 'How slots move: atomic slot migration when both nodes offer it (Valkey 9.0+ `CLUSTER MIGRATESLOTS`), else the classic protocol (auto); or only one of them' -r -f -a "auto\t'Atomic slot migration when both nodes offer it, else the classic protocol'
atomic\t'Only atomic slot migration (Valkey ≥ 9.0 `CLUSTER MIGRATESLOTS`); refuse otherwise'
legacy\t'Only the classic protocol (SETSLOT IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE)'"
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l coordinator -d 'The host whose `apply` makes cluster-level changes (default: the first host in `hosts`); name another while that one is down or drained' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -s y -l yes -d 'Do not ask for confirmation'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l restore-roles -d 'Move mastership back to the preferred masters: cluster shards (CLUSTER FAILOVER) and replication groups (SENTINEL FAILOVER), one safe failover at a time'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l replace -d 'When moving slots, overwrite keys that already exist on the target (BUSYKEY). Never in a move resumed after its source master was replaced: there the target\'s copy is the acknowledged one and the source\'s stale copy is deleted instead'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l purge -d 'Delete the data directories of nodes removed from the topology'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -l stop-distro-redis -d 'Stop and disable the distribution\'s own Redis service (e.g. redis-server) when it holds a port the topology wants, instead of refusing'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l force -d 'Drain even though the pre-checks found a risk (printed); never loses acknowledged writes by itself, but may leave shards without a replica'
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l move-slots -d 'Move the slots of a master that has no in-sync replica on another host to the other masters (instead of refusing)'
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -l dry-run -d 'Print the plan (steps, refusals, notes) and change nothing'
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand drain" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l keep-roles -d 'Leave mastership where it is now'
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -l dry-run -d 'Print this round\'s plan and change nothing (roles are planned in the round that finds the host\'s instances caught up)'
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand undrain" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l rolling -d 'One at a time, never losing availability (the only mode)'
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -l dry-run -d 'Print the plan (steps, refusals, notes) and change nothing'
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand restart" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand check" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l force
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -l dry-run -d 'Print the plan (steps, refusals, notes) and change nothing'
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand failover" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand agent" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -l reason -d 'Why (shown by `status` and in the agent\'s status line)' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand pause" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand resume" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -l yes -d 'Confirm that the deployment\'s data is to be deleted'
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand keyslot" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand schema" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand unit-start" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -l out -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -s o -l output -d 'Output format for reports' -r -f -a "text\t''
json\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -l state-dir -d 'Root of the state directories (overrides the topology\'s state_dir)' -r -F
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -l timeout -d 'Seconds each convergence gate may wait before naming what is missing' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -l supervisor -d 'Who runs the instances: `systemd` units (redis@PORT), or redisctl\'s own `process` supervisor; `auto` picks systemd when it is PID 1 and redisctl runs as root' -r -f -a "auto\t''
process\t''
systemd\t''"
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -l host -d 'Which of the topology\'s hosts this machine is (default: the hosts whose address is local here). Only this host\'s instances are started, stopped or rewritten' -r
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -s v -l verbose -d 'Show every Redis command redisctl sends, on stderr (secrets redacted); twice: also the replies'
complete -c redisctl -n "__fish_redisctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "validate" -d 'Check a topology file; report every problem with file:line:column'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "render" -d 'Write (or print) the files redisctl would generate for each instance'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "plan" -d 'Show the numbered steps `apply` would execute. Changes nothing'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "apply" -d 'Converge the live deployment to the topology'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "drain" -d 'Move every master off HOST (safe manual failovers; slot moves only with --move-slots), then stop HOST\'s instances and mark it drained. Run it on HOST'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "undrain" -d 'Start HOST\'s instances again, wait until its replicas have resynchronised, restore the roles recorded by `drain` (safe manual failovers) and clear the mark. Run it on HOST'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "restart" -d 'Restart this host\'s instances one at a time (replicas first; a master only after a safe failover to a replica, and back; Sentinels last), waiting for each to catch up'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "status" -d 'Per-node state: role, shard, slots, links, replication, keys, memory, persistence. Exits 2 when no declared node answers (not started, wrong password, unreachable)'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "check" -d 'Verify the live deployment: membership and slot maps agree everywhere, full coverage, no open slots, replicas as declared, master and replica on different hosts, no drift. Exits 1 when anything is wrong'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "failover" -d 'Make a replica the master of its shard or group (CLUSTER FAILOVER / SENTINEL FAILOVER) and wait until every node agrees. Refuses a lagging replica unless --force'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "agent" -d 'Run this host\'s control loop: every `agent.interval`, observe, plan and execute the healing part of this host\'s plan (as `apply` would); report the rest. Runs until stopped (the unit redisctl-agent@NAME)'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "pause" -d 'Pause the agent on this host (persisted): it observes and reports, and changes nothing'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "resume" -d 'Resume the agent on this host after `pause`'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "destroy" -d 'Stop every instance and delete its state and data. Needs --yes'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "keyslot" -d 'Hash slot of each key (CRC16 with {hash tags}, as CLUSTER KEYSLOT)'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "schema" -d 'Print the JSON Schema of the topology format'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "completions" -d 'Print a shell completion script'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "unit-start" -d 'The start hook of a data node\'s systemd unit (ExecStartPre): decide how the instance at PORT on --host may come back (crash-safe restarts) and write its start options'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "man" -d 'Write the man pages into DIR (packaging)'
complete -c redisctl -n "__fish_redisctl_using_subcommand help; and not __fish_seen_subcommand_from validate render plan apply drain undrain restart status check failover agent pause resume destroy keyslot schema completions unit-start man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
