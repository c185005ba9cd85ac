namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Which clients' circuits the fleet shares: those <c>AddRedisCoordination()</c> was called for, or every client when it
/// was called on the service collection. Other clients' circuits stay local, and their messages are ignored.
/// </summary>
internal sealed class CoordinatedClients
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private bool _all;

    public void Add(string? clientName)
    {
        if (clientName is null)
        {
            _all = true;
        }
        else
        {
            _names.Add(clientName);
        }
    }

    public bool Includes(string clientName) => _all || _names.Contains(clientName);
}
