import LinkHeader from 'http-link-header';

/** Relation name -> URL from a `Link` header; the first link of a relation wins. */
export function parseLinks(header: string | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  if (header === undefined || header.trim() === '') return links;
  for (const ref of LinkHeader.parse(header).refs) {
    for (const rel of ref.rel.toLowerCase().split(/\s+/)) {
      if (rel !== '' && links[rel] === undefined) links[rel] = ref.uri;
    }
  }
  return links;
}
