using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Redis;

/// <summary>
/// Binds <c>CircuitBreaker:Fleet</c> onto <see cref="RedisCoordinationOptions"/>. As in the core library, an unknown key,
/// a value that does not convert, or a bare number where a duration is expected is an error naming the key, never a
/// silent default.
/// </summary>
internal sealed class RedisCoordinationConfiguration : IConfigureOptions<RedisCoordinationOptions>
{
    private static readonly Dictionary<string, PropertyInfo> Properties = typeof(RedisCoordinationOptions)
        .GetProperties(BindingFlags.Public | BindingFlags.Instance)
        .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);

    private readonly IConfiguration? _section;

    public RedisCoordinationConfiguration(IConfiguration? section) => _section = section;

    public void Configure(RedisCoordinationOptions options)
    {
        if (_section is null)
        {
            return;
        }

        var errors = new List<string>();

        // A section written as one value ("Fleet": "redis:6379") has no keys: the binder would ignore it, and leave only a
        // missing ConnectionString to report.
        if (_section is IConfigurationSection { Value: { } single } own && !own.GetChildren().Any())
        {
            errors.Add($"{own.Path}: expects an object of keys, not the value '{single}'.");
        }

        foreach (var child in _section.GetChildren())
        {
            if (!Properties.TryGetValue(child.Key, out var property))
            {
                errors.Add($"{child.Path}: unknown configuration key '{child.Key}'. Known keys: {string.Join(", ", Properties.Keys.Order(StringComparer.Ordinal))}.");
            }
            else if (child.GetChildren().Any())
            {
                errors.Add($"{child.Path}: expects a single value, not an array or object.");
            }
            else if (property.PropertyType.IsValueType && string.IsNullOrEmpty(child.Value))
            {
                // The binder would keep the default for null, without a word.
                errors.Add($"{child.Path}: expects a value, not null or empty; remove the key to keep the default.");
            }
            else if (property.PropertyType == typeof(TimeSpan) && child.Value is { } value && !value.Contains(':', StringComparison.Ordinal))
            {
                errors.Add($"{child.Path}: '{value}' is not a duration: write it as hh:mm:ss, for example 00:00:05 (a bare number would mean days).");
            }
        }

        if (errors.Count == 0)
        {
            try
            {
                _section.Bind(options);
            }
            catch (InvalidOperationException ex)
            {
                errors.Add($"{(_section as IConfigurationSection)?.Path ?? RedisCoordinationDefaults.SectionName}: {ex.Message}");
            }
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(Options.DefaultName, typeof(RedisCoordinationOptions), errors);
        }
    }
}
