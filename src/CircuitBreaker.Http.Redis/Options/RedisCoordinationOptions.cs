using System.ComponentModel.DataAnnotations;
using System.Diagnostics.CodeAnalysis;

namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Options of fleet mode: how instances reach Redis, how many of them must see a downstream fail before its
/// circuit opens for all, and how long the fleet waits for its one prober. Bound from <c>CircuitBreaker:Fleet</c>.
/// </summary>
public sealed class RedisCoordinationOptions
{
    /// <summary>
    /// Gets or sets the StackExchange.Redis configuration string, such as <c>redis.internal:6379,password=...</c>.
    /// Required. <c>abortConnect=false</c> is always applied: the app starts, and its circuits decide locally, while
    /// Redis cannot be reached.
    /// </summary>
    [Required]
    public string? ConnectionString { get; set; }

    /// <summary>
    /// Gets or sets the prefix of every Redis key and of the channel this fleet uses. Applications sharing one Redis
    /// must use different prefixes. It is wrapped in a hash tag (<c>{prefix}</c>) so that every key of a fleet lives
    /// in one Redis Cluster slot. The default value is <c>circuitbreaker</c>.
    /// </summary>
    [Required]
    [RegularExpression(@"^[A-Za-z0-9_.:\-]+$", ErrorMessage = "The field KeyPrefix must be letters, digits, '_', '.', ':' or '-'.")]
    public string KeyPrefix { get; set; } = RedisCoordinationDefaults.KeyPrefix;

    /// <summary>
    /// Gets or sets the name this instance reports to the fleet (in heartbeats, votes, logs and health data), a pod
    /// name, say. A random suffix is added to it (<c>name:1a2b3c4d</c>) to make the instance's identity, so instances
    /// given one name through shared configuration still count as separate instances. The default value is
    /// <see langword="null"/>: the machine name and the process id, which an empty or blank name also gets.
    /// </summary>
    public string? InstanceName { get; set; }

    /// <summary>
    /// Gets or sets how many instances must have a circuit open, within <see cref="QuorumWindow"/>, before it opens for
    /// the whole fleet: a count such as <c>"3"</c>, or a percentage of the live instances such as <c>"30%"</c>
    /// (rounded up, at least 2 instances, so that one instance with a local network fault never opens a circuit for the
    /// others). Until the quorum is reached each instance decides alone. The default value is <c>"2"</c>.
    /// </summary>
    [Required]
    public string Quorum { get; set; } = RedisCoordinationDefaults.Quorum;

    /// <summary>
    /// Gets or sets how recent an instance's open circuit must be to count towards the quorum. The default value is 1 minute.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan QuorumWindow { get; set; } = RedisCoordinationDefaults.QuorumWindow;

    /// <summary>Gets or sets how often this instance tells the fleet it is alive. The default value is 5 seconds.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan HeartbeatInterval { get; set; } = RedisCoordinationDefaults.HeartbeatInterval;

    /// <summary>
    /// Gets or sets how long after its last heartbeat an instance still counts as live, for a percentage quorum. It must
    /// be longer than <see cref="HeartbeatInterval"/>. The default value is 15 seconds.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), "00:00:00.200", "00:15:00")]
    public TimeSpan InstanceExpiry { get; set; } = RedisCoordinationDefaults.InstanceExpiry;

    /// <summary>
    /// Gets or sets how long, after a fleet-wide break, instances wait for the one instance that won the probe lease
    /// to report: the lease's lifetime. When it passes without a verdict (the prober crashed), each instance probes
    /// by itself. It should exceed the probe's own <c>AttemptTimeout</c>. The default value is 30 seconds.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = RangeOfTimeSpan.Justification)]
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan ProbeWait { get; set; } = RedisCoordinationDefaults.ProbeWait;
}
