namespace CircuitBreaker.Http.Redis;

/// <summary>
/// The Lua scripts of fleet mode. Each runs atomically in Redis and reads Redis's own clock (<c>TIME</c>), so that
/// instances with skewed clocks still agree on windows, expiries and breaks.
/// </summary>
internal static class FleetScripts
{
    /// <summary>
    /// Records this instance's vote that a circuit is open, and opens it for the fleet when the votes within the window
    /// reach the quorum among the live instances, starting the episode with no probe lease. KEYS: votes, instances, open,
    /// lease. ARGV: instance, window ms, expiry ms,
    /// quorum count (0 for a percentage), quorum percent, minimum for a percentage, circuit field, break ms.
    /// Returns { decision (0 below quorum, 1 opened now, 2 already open), votes, live, required }.
    /// </summary>
    public const string Vote = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[3]))
        local live = redis.call('ZCARD', KEYS[2])
        local votes = redis.call('ZCARD', KEYS[1])
        local required = tonumber(ARGV[4])
        if required == 0 then
          required = math.max(tonumber(ARGV[6]), math.ceil(live * tonumber(ARGV[5]) / 100))
        end
        if votes < required then
          return { 0, votes, live, required }
        end
        local until_ = tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '0')
        if until_ > now then
          return { 2, votes, live, required }
        end
        redis.call('HSET', KEYS[3], ARGV[7], now + tonumber(ARGV[8]))
        redis.call('DEL', KEYS[4])
        return { 1, votes, live, required }
        """;

    /// <summary>
    /// Takes the probe lease of a circuit for this instance, unless another instance has it. A lease that already names
    /// this instance counts as taken: it is this instance's own from before an outage, and an instance must not lose
    /// the race against itself, leaving the fleet without a prober until
    /// the probe wait ends. Its expiry is left as it is, so that the lease still ends with the other instances' holds.
    /// KEYS: lease. ARGV: instance, probe wait ms. Returns 1 if this instance has the lease, 0 otherwise.
    /// </summary>
    public const string Lease = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
          return 1
        end
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          return 1
        end
        return 0
        """;

    /// <summary>
    /// Re-opens a circuit for the fleet after its probe failed. KEYS: open, lease. ARGV: circuit field, break ms.
    /// </summary>
    public const string Reopen = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('HSET', KEYS[1], ARGV[1], now + tonumber(ARGV[2]))
        redis.call('DEL', KEYS[2])
        return now
        """;

    /// <summary>
    /// Forgets a circuit the fleet's probe closed. The lease is left to expire: an instance that reaches half-open late
    /// must not win it and probe a second time before the verdict reaches it. KEYS: open, votes. ARGV: circuit field.
    /// </summary>
    public const string Close = """
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('DEL', KEYS[2])
        return 1
        """;

    /// <summary>
    /// Tells the fleet this instance is alive, and forgets the fleet's open circuits whose break and probe wait have both
    /// passed, by the rule of <see cref="Snapshot"/>: an episode that ended without a fleet close (its prober died, or no
    /// call reached it) must not stay until some instance joins or reconnects, or the hash grows with every short-lived
    /// host. Scanning the hash at every heartbeat is cheap: it holds only the circuits open for the whole fleet, usually
    /// none. KEYS: instances, open. ARGV: instance, expiry ms, probe wait ms.
    /// </summary>
    public const string Heartbeat = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZADD', KEYS[1], now, ARGV[1])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
        local all = redis.call('HGETALL', KEYS[2])
        for i = 1, #all, 2 do
          local until_ = tonumber(all[i + 1])
          if until_ ~= nil and until_ + tonumber(ARGV[3]) < now then
            redis.call('HDEL', KEYS[2], all[i])
          end
        end
        return redis.call('ZCARD', KEYS[1])
        """;

    /// <summary>
    /// Lists the circuits open for the fleet with the milliseconds left of their break, for an instance that joins or
    /// reconnects, and forgets those whose break and probe wait have both passed (their prober is gone). A circuit whose
    /// break is over but whose probe may still report is listed too, with the (negative) milliseconds since its break
    /// ended: the fleet still waits for its verdict. KEYS: open. ARGV: probe wait ms. Returns { field1, ms1, field2,
    /// ms2, ... }. An entry whose time is not a number (another build sharing the key prefix) is left out rather than
    /// failing the whole list.
    /// </summary>
    public const string Snapshot = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local all = redis.call('HGETALL', KEYS[1])
        local result = {}
        for i = 1, #all, 2 do
          local until_ = tonumber(all[i + 1])
          if until_ == nil then
            -- written by something else sharing the prefix: not ours to delete, and no reason to fail the others
          elseif until_ + tonumber(ARGV[1]) < now then
            redis.call('HDEL', KEYS[1], all[i])
          else
            table.insert(result, all[i])
            table.insert(result, until_ - now)
          end
        end
        return result
        """;
}
