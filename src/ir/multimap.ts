// A map from a key to the list of values filed under it, grown one value at a time.

/** Appends `value` to the list under `key`, starting the list on first use. */
export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
