-- An attribute keeps the state its client sent (the reference server returns it as sent), where
-- it used to be read back as its process's state. Existing attributes keep the state they were
-- read with until now: their process's.
ALTER TABLE attributes ADD COLUMN state smallint NOT NULL DEFAULT 0;
UPDATE attributes a SET state = p.state FROM processes p WHERE p.process_id = a.target_id;

CREATE OR REPLACE FUNCTION process_details(process_id text)
RETURNS TABLE (attributes jsonb, parents text[], children text[]) STABLE LANGUAGE sql AS $$
    SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'attributeid', a.attribute_id, 'targetid', a.target_id,
                        'targetcolonyname', a.colony_name, 'targetprocessgraphid', a.processgraph_id,
                        'state', a.state, 'attributetype', a.attribute_type, 'key', a.key,
                        'value', a.value)
                        ORDER BY a.added, a.attribute_id), '[]'::jsonb)
              FROM attributes a
             WHERE a.target_id = process_id),
           (SELECT coalesce(array_agg(e.parent_id ORDER BY e.edge_id), '{}')
              FROM process_edges e
             WHERE e.child_id = process_id),
           (SELECT coalesce(array_agg(e.child_id ORDER BY e.edge_id), '{}')
              FROM process_edges e
             WHERE e.parent_id = process_id)
$$;
