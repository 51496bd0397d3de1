-- 0019_zoho_shapes: what Zoho really sends that tds did not keep (issue 17).
-- 1. Every documented stock figure (point 6): available for sale and
--    committed, per item and per location, as Zoho computes them (a sales
--    team looks at these first).  NULL where Zoho sent none: an item that
--    does not track inventory has no figures and no location rows at all.
ALTER TABLE zoho.items
    ADD COLUMN available_for_sale_stock numeric,
    ADD COLUMN actual_available_for_sale_stock numeric,
    ADD COLUMN committed_stock numeric,
    ADD COLUMN actual_committed_stock numeric;
ALTER TABLE zoho.item_locations
    ADD COLUMN available_for_sale_stock numeric,
    ADD COLUMN actual_available_for_sale_stock numeric,
    ADD COLUMN committed_stock numeric,
    ADD COLUMN actual_committed_stock numeric;

-- 2. Purchase orders (point 9), synced like the other transaction
--    entities: they drive incoming stock.
--    Shaped as a sales order, the other way round (a vendor, a delivery
--    date): the same columns, keys, compression and row_hash, renamed.
CREATE TABLE zoho.purchaseorders (LIKE zoho.salesorders INCLUDING ALL);
ALTER TABLE zoho.purchaseorders RENAME COLUMN salesorder_id TO purchaseorder_id;
ALTER TABLE zoho.purchaseorders RENAME COLUMN salesorder_number TO purchaseorder_number;
ALTER TABLE zoho.purchaseorders RENAME COLUMN customer_id TO vendor_id;
ALTER TABLE zoho.purchaseorders RENAME COLUMN customer_name TO vendor_name;
ALTER TABLE zoho.purchaseorders RENAME COLUMN shipment_date TO delivery_date;

-- 3. An item marked deleted (reconciliation, a webhook, any path) loses
--    its location rows (point 7): its stock is no longer anywhere.  A row
--    trigger (a column list allows no transition table); WHEN keeps the
--    bulk merges' updates (deleted_at set NULL) out of plpgsql.
-- (the item's row stays, marked; a sync that finds it again writes them anew)
CREATE FUNCTION zoho.items_deleted_locations() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN DELETE FROM zoho.item_locations WHERE item_id = NEW.item_id; RETURN NULL; END $$;
CREATE TRIGGER items_deleted_locations AFTER UPDATE OF deleted_at ON zoho.items
    FOR EACH ROW WHEN (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL)
    EXECUTE FUNCTION zoho.items_deleted_locations();
